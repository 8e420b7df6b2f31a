"""Anti-spoofing cost on CPU: the shipped telephone countermeasure against AASIST, per call, in the same run.

Subjects, timed round-robin in the same run so that load from other processes falls on all alike; each is the
countermeasure's work for **one call's speech** (a stream scores at most ``antispoof_stream_windows`` = 2 windows):

* ``aasist-reference``: AASIST as a plain eager port of the release runs it (contiguous NCHW tensors), 2 x 4 s;
* ``aasist``: AASIST's production path (channels-last convolutions), 2 windows of 4 s in one batch;
* ``telephone``: the shipped telephone LFB-LCNN (``antispoof_model=telephone``, the default), 2 windows of 4 s;
* ``telephone-4s``: the same for a 4 s answer (one window);
* ``fingerprint+compare``: the replay check for one 4 s attempt against one remembered attempt.

Then (``--calls N``, 0 to skip) what anti-spoofing adds to a call stream: FSDD digit strings as 8 kHz mu-law calls
in 100 ms blocks through :class:`voiceauth.streaming.StreamingVerifier` with the real speaker engine, claiming an
enrolled speaker, with ``antispoof_mode`` off, monitor and enforce (the same calls, in the same run): the decision
latency (from the deciding block's arrival to the decision) and the CPU seconds per call (process time, AASIST
worker included, a monitor-mode score recorded after the decision included).

    .venv/bin/python benchmarks/antispoof_latency.py --repeats 5 --calls 12
    .venv/bin/python -m benchmarks antispoof              # the same through the benchmark suite

Writes ``benchmarks/results/antispoof_latency.json`` and prints markdown tables (medians, ratios to reference/off).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf
import torch

from benchmarks.measure import cpu_summary
from models.fetch import ensure_model
from models.registry import AASIST
from voiceauth.antispoof.countermeasure import Countermeasure
from voiceauth.antispoof.replay import compare, fingerprint
from voiceauth.antispoof.windows import WINDOW_SAMPLES, tile_to
from voiceauth.config import Settings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "antispoof_latency.json"
FSDD = ROOT.parent / "shared" / "data" / "fsdd"
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def window_latency(repeats: int = 5) -> dict[str, Any]:
    """Median ms and CPU seconds per call of each subject, timed round-robin."""
    from voiceauth.antispoof.countermeasure import create_countermeasure

    model_dir = ensure_model(Settings(), AASIST)
    cm = Countermeasure(model_dir, max_windows=1)
    reference = Countermeasure(model_dir, max_windows=1)
    reference._net = reference._net.to(memory_format=torch.contiguous_format)  # plain eager port, as released
    tel = create_countermeasure(Settings(antispoof_model="telephone"))

    speech, rate = sf.read(ROOT / "audio_samples" / "librispeech_1034-121119-0000.flac", dtype="float32")
    assert rate == 16_000
    window = tile_to(speech, WINDOW_SAMPLES)
    one = window[None, :]
    two = np.stack([window, tile_to(speech[WINDOW_SAMPLES // 2 :], WINDOW_SAMPLES)])
    tel_two = np.ascontiguousarray(two[:, : tel.window])
    tel_one = tel_two[:1]
    fp_old = fingerprint(window, 16_000)

    subjects: dict[str, tuple[Callable[[], object], int]] = {
        "aasist-reference": (lambda: reference.score_windows(two), 1),
        "aasist": (lambda: cm.score_windows(two), 1),
        "telephone": (lambda: tel.score_windows(tel_two), 1),
        "telephone-4s": (lambda: tel.score_windows(tel_one), 1),
        "fingerprint+compare": (lambda: compare(fingerprint(window * 0.9, 16_000), fp_old), 1),
    }
    ref_out = reference.score_windows(one)
    prod_out = cm.score_windows(one)
    max_diff = float(np.abs(ref_out - prod_out).max())
    for fn, _ in subjects.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in subjects}
    cpu: dict[str, list[float]] = {k: [] for k in subjects}
    for _ in range(repeats):
        for name, (fn, per) in subjects.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1000.0 / per)
            cpu[name].append((time.process_time() - c0) / per)
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {
        "window_samples": WINDOW_SAMPLES,
        "telephone_model": tel.name,
        "repeats": repeats,
        "median_ms_per_call": med,
        "median_cpu_s_per_call": {k: float(np.median(v)) for k, v in cpu.items()},
        "ratio_to_aasist": {k: v / med["aasist"] for k, v in med.items()},
        "max_abs_score_diff_vs_reference": max_diff,
    }


def _digits(speaker: str, ds: str, index: int) -> npt.NDArray[np.float32]:
    parts = [sf.read(FSDD / f"{d}_{speaker}_{index}.wav", dtype="float32")[0] for d in ds]
    return np.concatenate(parts).astype(np.float32)


def stream_cost(calls: int = 12, model: str = "telephone") -> dict[str, Any]:
    """Decision latency and CPU per call with anti-spoofing off / monitor / enforce (same calls, interleaved)."""
    from voiceauth.antispoof.countermeasure import create_countermeasure
    from voiceauth.antispoof.stream import CallSpoof, WindowBatcher
    from voiceauth.audio.codecs import mulaw_encode
    from voiceauth.audio.stream import StreamingFrontEnd
    from voiceauth.embedding.factory import create_engine
    from voiceauth.pipeline import Pipeline
    from voiceauth.streaming import StreamingPolicy, StreamingVerifier

    settings = Settings(
        home=Path(tempfile.mkdtemp(prefix="voiceauth-bench-")),
        antispoof_model=model,  # type: ignore[arg-type]
        antispoof_model_dir=ensure_model(Settings(), AASIST) if model == "aasist" else None,
        scoring_backend="cosine",
        enroll_min_speech_s=6.0,
        lockout_failures=1_000_000,
        lockout_disable_failures=1_000_001,
        antispoof_mode="off",
    )
    engine = create_engine(Settings())
    cm = create_countermeasure(settings)
    pipe = Pipeline.from_settings(settings, engine=engine)
    pipe.register("bench", "george", consent_method="bench", consent_text_version="v1", actor="bench")
    assert pipe.frontend is not None
    enrol = pipe.frontend.from_samples(np.concatenate([_digits("george", "0123456789", i) for i in (0, 1)]), 8000)  # type: ignore[attr-defined]
    assert pipe.enroll("bench", "george", enrol, actor="bench").enrolled
    policy = StreamingPolicy.from_settings(settings)
    strings = ("3141592653", "2718281828", "1618033988")
    audio = [_digits(SPEAKERS[i % 6], strings[(i // 6) % 3], 40 + i // 6) for i in range(calls)]
    rows: dict[str, list[dict[str, float]]] = {"off": [], "monitor": [], "enforce": []}
    for i, x in enumerate([audio[0], *audio]):  # the first call warms up (not counted)
        data = mulaw_encode(x)
        for mode in rows:
            batcher = WindowBatcher(cm) if mode != "off" else None
            spoof = CallSpoof(batcher, mode=mode, max_windows=settings.antispoof_stream_windows) if batcher else None
            sv = StreamingVerifier(
                frontend=StreamingFrontEnd(settings, sample_rate=8000, fmt="mulaw"),
                engine=engine,
                verifier=pipe.verifier,
                tenant="bench",
                speaker_ref="george",
                call_id=f"{mode}-{i}",
                policy=policy,
                spoof=spoof,
            )
            cpu0 = time.process_time()
            decided = None
            for k in range(0, len(data), 800):
                if (decided := sv.feed(data[k : k + 800])) is not None:
                    break
            decided = decided or sv.finish()
            if batcher is not None:
                batcher.close(timeout=120.0)  # a monitor score recorded after the decision is part of the call's CPU
            if i == 0:
                continue
            rows[mode].append(
                {
                    "latency_ms": decided.compute_ms,
                    "cpu_s": time.process_time() - cpu0,
                    "speech_s": decided.speech_seconds,
                    "windows": float(spoof.windows_submitted if spoof else 0),
                    "waited_ms": spoof.waited_ms if spoof else 0.0,
                }
            )
    summary: dict[str, Any] = {
        "calls": calls,
        "model": cm.name,
        "stream_windows": settings.antispoof_stream_windows,
        "modes": {},
    }
    for mode, rs in rows.items():
        summary["modes"][mode] = {
            "median_latency_ms": statistics.median(r["latency_ms"] for r in rs),
            "p95_latency_ms": float(np.percentile([r["latency_ms"] for r in rs], 95)),
            "median_cpu_s": statistics.median(r["cpu_s"] for r in rs),
            "mean_windows": statistics.mean(r["windows"] for r in rs),
            "median_wait_for_countermeasure_ms": statistics.median(r["waited_ms"] for r in rs),
            "median_speech_s": statistics.median(r["speech_s"] for r in rs),
        }
    off = summary["modes"]["off"]
    for m in summary["modes"].values():
        m["latency_ratio_to_off"] = m["median_latency_ms"] / off["median_latency_ms"]
        m["added_cpu_s"] = m["median_cpu_s"] - off["median_cpu_s"]
    return summary


def run(repeats: int = 5, threads: int | None = None, calls: int = 12) -> dict[str, Any]:
    """Both parts; writes the results file and prints the tables."""
    if threads:
        torch.set_num_threads(threads)
    data: dict[str, Any] = {
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "cpu": cpu_summary(),
        "load_average": list(os.getloadavg()),
        **window_latency(repeats),
    }
    med = data["median_ms_per_call"]
    cpu = data["median_cpu_s_per_call"]
    print(f"| subject (one call's speech) | median ms | ratio to aasist | CPU ms |   (threads {data['threads']})")
    print("|---|---|---|---|")
    for k, v in med.items():
        print(f"| {k} | {v:.1f} | {v / med['aasist']:.3f} | {1000 * cpu[k]:.1f} |")
    print(f"max |score difference| AASIST production vs reference: {data['max_abs_score_diff_vs_reference']:.2e}")
    if calls > 0:
        data["stream"] = {m: stream_cost(calls, m) for m in ("telephone", "aasist")}
        print(
            "\n| countermeasure | antispoof_mode | decision latency median ms | p95 ms | ratio to off | CPU s / call "
            f"| added CPU s | windows / call | waited for the countermeasure, median ms |   ({calls} calls)"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for model, part in data["stream"].items():
            for mode, m in part["modes"].items():
                print(
                    f"| {model} | {mode} | {m['median_latency_ms']:.0f} | {m['p95_latency_ms']:.0f} "
                    f"| {m['latency_ratio_to_off']:.2f} | {m['median_cpu_s']:.3f} | {m['added_cpu_s']:+.3f} "
                    f"| {m['mean_windows']:.1f} | {m['median_wait_for_countermeasure_ms']:.1f} |"
                )
    data["load_average_after"] = list(os.getloadavg())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--calls", type=int, default=12, help="calls per antispoof_mode in the stream part (0: skip)")
    args = ap.parse_args()
    run(args.repeats, args.threads, args.calls)


if __name__ == "__main__":
    main()
