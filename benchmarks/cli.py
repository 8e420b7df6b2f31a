"""``python -m benchmarks``: latency, throughput, accuracy and the full suite, each against SpeechBrain's reference.

Examples::

    python -m benchmarks latency --seconds 3 --json     # the issue's one-line JSON
    python -m benchmarks throughput --threads 1 --backends fused-int8,onnx-int8   # batch 16/32/64, mixed 2-8 s
    python -m benchmarks precision --seconds 3          # reference vs engine in each precision mode
    python -m benchmarks all --quick                    # CI smoke run (< 2 min on 2 cores)
    python -m benchmarks all                            # full CPU table into benchmarks/results/
    python -m benchmarks all --device cuda              # the same on a GPU
    python -m benchmarks antispoof                      # AASIST ms per 4 s window, its cost per call stream
    python -m benchmarks digits                         # liveness digit recognition: accuracy, CPU per second
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
import typer

from benchmarks.data import RATE, SpeechSource, librispeech_g711
from benchmarks.measure import accuracy, accuracy_of, environment, latency, throughput
from benchmarks.report import markdown, write_results
from benchmarks.roofline import cpu_info, frames_of, machine_peaks, roofline
from benchmarks.subjects import REFERENCE, Subject, build_subject, production_name, subject_names

__all__ = ["app"]

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
RESULTS = Path(__file__).resolve().parent / "results"

Device = Annotated[str, typer.Option(help="cpu, cuda or auto.")]
Threads = Annotated[int | None, typer.Option(help="torch intra-op threads (default: all cores).")]
Only = Annotated[str | None, typer.Option("--backends", help="Comma-separated subjects (reference is always run).")]


def _setup(device: str, threads: int | None, only: str | None, quick: bool) -> tuple[str, list[Subject], Path]:
    from models.fetch import ensure_model
    from voiceauth.config import Settings
    from voiceauth.embedding.precision import resolve_device

    dev = resolve_device(device)
    torch.set_num_threads(threads or torch.get_num_threads())
    model_dir = ensure_model(Settings(), fetch=False)
    names = subject_names(dev, quick)
    if only:
        wanted = [n.strip() for n in only.split(",") if n.strip()]
        names = [REFERENCE, *[n for n in wanted if n != REFERENCE]]
    return dev, [build_subject(n, model_dir, dev) for n in names], model_dir


def _cosine_min(subjects: list[Subject], source: SpeechSource, seconds: float, lat: dict[str, Any]) -> dict[str, float]:
    """Minimum cosine to the reference over one string per speaker plus the timed utterance."""
    wavs = [source.string(spk, seconds) for spk in source.speakers]
    embs = {s.name: s.embed_batch(wavs, RATE) for s in subjects}
    ref = embs[REFERENCE]
    return {n: float(min(np.min(np.sum(e * ref, axis=1)), lat[n]["cosine"])) for n, e in embs.items()}


def _telephone_accuracy(subjects: list[Subject], readers: int) -> dict[str, Any] | None:
    """EER guard on many speakers: LibriSpeech readers through G.711 mu-law (None without the shared data)."""
    utts = librispeech_g711(readers=readers, per_reader=2)
    if not utts:
        return None
    n = len({u.speaker for u in utts})
    name = f"LibriSpeech (shared data): {len(utts)} pieces of 3-6 s, 2 per reader, G.711 mu-law 8 kHz, {n} readers"
    return accuracy_of(subjects, utts, name)


@app.command("latency")
def latency_cmd(
    seconds: Annotated[list[float] | None, typer.Option(help="Utterance length(s) in seconds.")] = None,
    repeats: Annotated[int, typer.Option(min=1)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    quick: bool = False,
    device: Device = "cpu",
    threads: Threads = None,
    only: Only = None,
) -> None:
    """Latency of one 8 kHz utterance per backend, with speedup and cosine to SpeechBrain's reference."""
    lengths = seconds or [3.0]
    dev, subjects, _ = _setup(device, threads, only, quick)
    source = SpeechSource()
    reps = min(repeats, 3) if quick else repeats
    per_len = {f"{s:g}s": latency(subjects, source, s, reps) for s in lengths}
    first = per_len[f"{lengths[0]:g}s"]
    cos = _cosine_min(subjects, source, lengths[0], first)
    # the machine's GEMM peaks, measured in this run on the same threads (CPU only: a GPU has its own roofline)
    peaks = machine_peaks(quick) if dev == "cpu" else None
    frames = frames_of(round(lengths[0] * 16000))
    roof = {n: roofline(n, frames, r["p50_ms"], peaks["gflops"]) for n, r in first.items()} if peaks else {}
    doc = {
        "seconds": lengths[0],
        "device": dev,
        "threads": torch.get_num_threads(),
        "reference_p50_ms": first[REFERENCE]["p50_ms"],
        "production_backend": production_name(dev),
        "backends": {
            n: {
                "p50_ms": r["p50_ms"],
                "p99_ms": r["p99_ms"],
                "speedup": r["speedup"],
                "cosine_min": round(cos[n], 6),
                "cpu_p50_ms": r["cpu_p50_ms"],
                "cpu_speedup": r["cpu_speedup"],
                **(
                    {"roofline_fraction": roof[n]["roofline_fraction"], "roofline": roof[n]}
                    if n in roof
                    else {"roofline_fraction": None}
                ),
            }
            for n, r in first.items()
            if n != REFERENCE
        },
        "cpu": cpu_info(),
        "peaks": peaks,
        "reference_roofline": roof.get(REFERENCE),
    }
    if len(lengths) > 1:
        doc["by_length"] = per_len
    if as_json:
        typer.echo(json.dumps(doc))
        return
    if peaks:
        gf = peaks["gflops"]
        typer.echo(f"{doc['cpu']['model']} ({', '.join(doc['cpu']['flags'])}), {peaks['threads']} threads")
        typer.echo("GEMM peaks (GFLOP/s): " + ", ".join(f"{p} {v:.0f}" for p, v in gf.items()))
    for length, per in per_len.items():
        typer.echo(f"{length}:")
        for n, r in per.items():
            line = f"  {n:18s} p50 {r['p50_ms']:9.1f} ms  p99 {r['p99_ms']:9.1f} ms  x{r['speedup']:.2f}"
            if length == f"{lengths[0]:g}s" and n in roof:
                q = roof[n]
                line += (
                    f"  {q['gflops']:6.1f} GFLOP/s ({q['precision']} {q['peak_fraction']:.0%} of its peak)"
                    f"  roofline {q['roofline_fraction']:.0%} (bound {q['bound_ms']:.1f} ms)"
                )
            typer.echo(line)


@app.command("throughput")
def throughput_cmd(
    batches: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "16,32,64",
    low_s: Annotated[float, typer.Option(help="Shortest utterance (s).")] = 2.0,
    high_s: Annotated[float, typer.Option(help="Longest utterance (s).")] = 8.0,
    repeats: Annotated[int, typer.Option(min=1, help="Timed rounds (the median round is reported).")] = 3,
    device: Device = "cpu",
    threads: Threads = None,
    only: Only = None,
) -> None:
    """Batch throughput of mixed-length utterances per backend (one JSON object); the reference only up to 8."""
    dev, subjects, _ = _setup(device, threads, only, False)
    sizes = [int(b) for b in batches.split(",") if b.strip()]
    # a fresh (seeded) source per round: every round embeds the same utterances
    rounds = [throughput(subjects, SpeechSource(), sizes, low_s, high_s) for _ in range(repeats)]
    peaks = machine_peaks() if dev == "cpu" else None
    pool = SpeechSource().mixed(max(sizes), low_s, high_s)  # the utterances every round embedded
    median: dict[str, list[dict[str, Any]]] = {}
    for name in rounds[0]:
        median[name] = []
        for i in range(len(rounds[0][name])):
            runs = sorted((r[name][i] for r in rounds), key=lambda r: r["cpu_s"])
            row = {**runs[len(runs) // 2], "rounds": len(runs)}
            if peaks:
                frames = [frames_of(w.size * 16000 // RATE) for w in pool[: row["batch"]]]
                q = roofline(name, frames, row["wall_s"] * 1e3, peaks["gflops"])
                row |= {
                    "gflops": q["gflops"],
                    "roofline_fraction": q["roofline_fraction"],
                    "bound_s": q["bound_ms"] / 1e3,
                }
            median[name].append(row)
    doc = {
        "device": dev,
        "threads": torch.get_num_threads(),
        "lengths_s": [low_s, high_s],
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpu": cpu_info(),
        "peaks": peaks,
        "throughput": median,
    }
    typer.echo(json.dumps(doc))


@app.command("accuracy")
def accuracy_cmd(
    readers: Annotated[int, typer.Option(help="LibriSpeech readers (2 pieces each) through G.711 mu-law.")] = 126,
    per_speaker: Annotated[int, typer.Option(help="FSDD digit strings of 3 s per speaker.")] = 12,
    device: Device = "cpu",
    threads: Threads = None,
    only: Only = None,
) -> None:
    """Accuracy guard only (one JSON object): cosine to the reference and EER on both telephone sets."""
    dev, subjects, _ = _setup(device, threads, only, False)
    doc = {
        "device": dev,
        "fsdd": accuracy(subjects, SpeechSource(), per_speaker),
        "librispeech_g711": _telephone_accuracy(subjects, readers),
    }
    typer.echo(json.dumps(doc))


@app.command("precision")
def precision_cmd(
    seconds: float = 3.0,
    repeats: Annotated[int, typer.Option(min=1)] = 10,
    device: Device = "cpu",
    threads: Threads = None,
) -> None:
    """Median latency of the reference and of EcapaEngine in each precision mode, and their ratios."""
    dev = "cuda" if device == "cuda" else "cpu"
    modes = ["speechbrain-fp32", "speechbrain-fp16" if dev == "cuda" else "speechbrain-bf16"]
    _, subjects, _ = _setup(dev, threads, ",".join(modes), False)
    per = latency(subjects, SpeechSource(), seconds, repeats)
    ref = per[REFERENCE]["p50_ms"]
    typer.echo(f"{seconds:g} s utterance, {torch.get_num_threads()} threads, {dev}")
    typer.echo(f"  {'reference (SpeechBrain)':26s} median {ref:8.1f} ms")
    for n, r in per.items():
        if n != REFERENCE:
            typer.echo(
                f"  {n:26s} median {r['p50_ms']:8.1f} ms  reference/engine {ref / r['p50_ms']:.2f}  "
                f"cosine {r['cosine']:.5f}"
            )


@app.command("all")
def all_cmd(
    quick: Annotated[bool, typer.Option(help="CI smoke run: fewer lengths, repeats and utterances.")] = False,
    device: Device = "cpu",
    threads: Threads = None,
    only: Only = None,
    out: Annotated[Path, typer.Option(help="Results folder.")] = RESULTS,
    stem: Annotated[str | None, typer.Option(help="File name stem (default: embedding-<device>[-quick]).")] = None,
) -> None:
    """The full suite: latency at 1/3/6/10 s, throughput at batch 1-64, accuracy guard; JSON + Markdown + PNG."""
    t0 = time.perf_counter()
    dev, subjects, _ = _setup(device, threads, only, quick)
    source = SpeechSource()
    lengths = [3.0] if quick else [1.0, 3.0, 6.0, 10.0]
    repeats = 3 if quick else 7
    batches = [1, 8] if quick else [1, 2, 4, 8, 16, 32, 64]
    per_speaker = 2 if quick else 12
    # emulated bf16 (no AMX / AVX512-BF16) is slow and not a production candidate: latency only
    from voiceauth.embedding.precision import cpu_has_bf16

    native = [s for s in subjects if not (s.name.endswith("bf16") and dev == "cpu" and not cpu_has_bf16())]
    result: dict[str, Any] = {
        "command": "python -m benchmarks " + shlex.join(sys.argv[1:]),
        "production_backend": production_name(dev),
        "subjects": {s.name: s.description for s in subjects},
        "latency": {f"{s:g}s": latency(subjects, source, s, repeats) for s in lengths},
        "throughput": throughput(native, source, batches, reference_max_batch=2 if quick else 8),
        "accuracy": accuracy(native, source, per_speaker),
        "accuracy_telephone": _telephone_accuracy(native, readers=12 if quick else 126),
        "streaming": None,
    }
    if dev == "cpu":  # each backend's 3 s latency against this machine's GEMM peaks (benchmarks.roofline)
        peaks = machine_peaks(quick)
        frames = frames_of(3 * 16000)
        result["roofline"] = {
            "peaks": peaks,
            "cpu": cpu_info(),
            "3s": {n: roofline(n, frames, r["p50_ms"], peaks["gflops"]) for n, r in result["latency"]["3s"].items()},
        }
    result["environment"] = environment(dev)
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    paths = write_results(result, out, stem or ("embedding-" + dev + ("-quick" if quick else "")))
    typer.echo(markdown(result))
    typer.echo("wrote " + ", ".join(str(p) for p in paths))


@app.command("digits")
def digits_cmd(
    per_speaker: Annotated[int, typer.Option(help="FSDD digit strings per speaker.")] = 25,
    tts: Annotated[int, typer.Option(help="espeak-ng strings and festival strings (each).")] = 36,
    seed: Annotated[int, typer.Option(help="Random seed of the strings.")] = 7,
) -> None:
    """Liveness: digit-string recognition accuracy on telephone-channel speech and CPU per second of audio."""
    from benchmarks.digits import run

    run(per_speaker=per_speaker, tts=tts, seed=seed)


@app.command("antispoof")
def antispoof_cmd(
    repeats: Annotated[int, typer.Option(help="Timed rounds per subject.")] = 5,
    threads: Annotated[int | None, typer.Option(help="torch intra-op threads (default: torch's).")] = None,
    calls: Annotated[int, typer.Option(help="Calls per antispoof_mode in the stream part (0: skip it).")] = 12,
) -> None:
    """Anti-spoofing: AASIST latency per 4 s window vs the plain eager port, replay check, added cost per call."""
    from benchmarks.antispoof_latency import run

    run(repeats=repeats, threads=threads, calls=calls)
