"""Anti-spoofing accuracy: AASIST on real bona fide speech vs generated attacks, 16 kHz and telephone channel.

Bona fide: LibriSpeech cohort readers (16 kHz) and FSDD digit strings (7 digits of one speaker, 8 kHz native,
upsampled). Spoof: espeak-ng (formant synthesis, 8 voices, 120-220 wpm) and Piper en_US-joe-medium (neural TTS).
Telephone: every utterance passes 16 kHz -> 8 kHz -> G.711 mu-law -> 16 kHz (FSDD is narrowband either way).

Per-window scores are cached in ``--work`` (default /tmp/voiceauth-antispoof-eval), so pooling variants are
analysed without re-scoring. Writes ``benchmarks/results/antispoof.json`` and prints a markdown table.

    .venv/bin/python benchmarks/antispoof_eval.py --libri 50 --fsdd 30 --espeak 40 --piper 40
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from models.fetch import ensure_model
from models.registry import AASIST
from voiceauth.antispoof.attacks import espeak_attacks, piper_attacks, telephone_channel
from voiceauth.antispoof.countermeasure import Countermeasure
from voiceauth.antispoof.evaluation import load_16k, spoof_metrics
from voiceauth.antispoof.windows import WINDOW_SAMPLES, pool_scores, trim_silence, window_starts, windows
from voiceauth.audio.codecs import mulaw_decode, mulaw_encode
from voiceauth.audio.frontend import FrontEnd
from voiceauth.audio.resample import resample
from voiceauth.config import Settings
from voiceauth.embedding.base import FloatArray

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"
DENSE_HOP = 16_150  # windows are scored 1 s apart; policies with hops of 1, 2 or 4 s are read from that cache


def build_sets(work: Path, n_libri: int, n_fsdd: int, n_espeak: int, n_piper: int) -> dict[str, list[Path]]:
    sets: dict[str, list[Path]] = {}
    libri = sorted((DATA / "librispeech-cohort").glob("*.flac"))
    step = max(1, len(libri) // max(1, n_libri))
    sets["librispeech"] = libri[::step][:n_libri]
    fsdd_dir = work / "fsdd"
    fsdd_dir.mkdir(parents=True, exist_ok=True)
    speakers = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    rng = np.random.default_rng(1)
    out = []
    for i in range(n_fsdd):
        spk = speakers[i % len(speakers)]
        path = fsdd_dir / f"fsdd-{spk}-{i:03d}.wav"
        if not path.exists():
            digits = rng.integers(0, 10, 7)
            idx = rng.integers(0, 50, 7)
            parts = [
                sf.read(str(DATA / "fsdd" / f"{d}_{spk}_{k}.wav"), dtype="float32")[0]
                for d, k in zip(digits, idx, strict=True)
            ]
            gap = np.zeros(800, dtype=np.float32)
            sf.write(str(path), np.concatenate([np.concatenate([p, gap]) for p in parts]), 8000)
        out.append(path)
    sets["fsdd"] = out
    for name, gen, n in (("espeak", espeak_attacks, n_espeak), ("piper", piper_attacks, n_piper)):
        d = work / name
        d.mkdir(parents=True, exist_ok=True)
        files = sorted(d.glob("*.wav"))
        if len(files) < n:
            for f in files:
                f.unlink()
            for atk in gen(n, seed=7):
                sf.write(str(d / f"{atk.name}.wav"), atk.samples, 16000)
            files = sorted(d.glob("*.wav"))
        sets[name] = files[:n]
    return sets


def condition_audio(x: FloatArray, cond: str, frontends: dict[str, FrontEnd]) -> FloatArray:
    """What the countermeasure sees for one 16 kHz file under ``cond``.

    ``telephone``/``16k`` (+ ``-trim``): the file through the G.711 channel or not, silence-trimmed or not.
    ``pipeline-span``: what production scores for a phone call: 16 kHz -> 8 kHz G.711 mu-law -> the service's front
    end (band matching, resampling, Silero VAD) -> the audio from the first speech onset to the last offset, pauses
    kept (``Utterance.span``). ``pipeline``: the same, but the VAD speech segments concatenated (``Utterance.speech``,
    what the countermeasure was given before; bona fide speech without its pauses scores spoof-like).
    ``pipeline-wide``: a 16 kHz upload through the front end with ``audio_band=wide``, span (no band limiting).
    """
    if cond in ("pipeline", "pipeline-span"):
        narrow = np.clip(resample(x, 16_000, 8_000), -1.0, 1.0)
        utt = frontends["telephone"].from_samples(mulaw_decode(mulaw_encode(narrow)), 8_000, narrowband=True)
        return utt.speech if cond == "pipeline" or utt.span is None else utt.span
    if cond == "pipeline-wide":
        utt = frontends["wide"].from_samples(np.clip(x, -1.0, 1.0), 16_000)
        return utt.span if utt.span is not None else utt.speech
    if cond.startswith("telephone"):
        x = telephone_channel(x)
    if cond.endswith("-trim"):
        x = trim_silence(x)
    return x


def score_all(
    cm: Countermeasure, sets: dict[str, list[Path]], cache: Path, conditions: list[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per condition and set: every window of every file (``cm.hop`` apart, tail aligned), cached in ``cache``."""
    scores: dict[str, dict[str, dict[str, Any]]] = json.loads(cache.read_text()) if cache.exists() else {}
    frontends = {
        "telephone": FrontEnd(Settings(audio_band="telephone")),
        "wide": FrontEnd(Settings(audio_band="wide")),
    }
    for cond in conditions:
        for name in ("piper", "fsdd", "librispeech", "espeak"):
            files = sets[name]
            key = f"{cond}/{name}"
            done = scores.get(key, {})
            for path in files:
                if path.name in done:
                    continue
                x = condition_audio(load_16k(path), cond, frontends)
                if x.size == 0:
                    print(f"{key}: no speech in {path.name}; skipped", flush=True)
                    continue
                starts = window_starts(x.size, cm.window, cm.hop, 10_000)
                mat = windows(x, cm.window, cm.hop, 10_000)
                done[path.name] = {
                    "n": int(x.size),
                    "starts": starts,
                    "scores": [float(v) for v in cm.score_windows(mat)],
                }
                scores[key] = done
                cache.write_text(json.dumps(scores))
            print(f"scored {key}: {len(done)} files", flush=True)
    return scores


#: (name, hop in samples or None for the dense hop, max windows, pooling) of the window policies compared
POLICIES: tuple[tuple[str, int | None, int, str], ...] = tuple(
    (f"{pool}-k{k}-hop{hop // 16_150 if hop else 0}", hop, k, pool)
    for pool in ("min", "mean", "median", "max")
    for hop in (16_150, 32_300, 64_600)
    for k in (1, 2, 3, 4, 6, 8)
) + (("first", None, 1, "first"),)


def utterance_score(entry: dict[str, Any], window: int, hop: int | None, k: int, pooling: str) -> float:
    """The pooled score a countermeasure with this (hop, max windows, pooling) gives, from the dense window cache."""
    by_start = dict(zip(entry["starts"], entry["scores"], strict=True))
    if pooling == "first":
        return float(entry["scores"][0])
    starts = window_starts(int(entry["n"]), window, hop or DENSE_HOP, k)
    missing = [s for s in starts if s not in by_start]
    if missing:
        raise SystemExit(f"hop {hop} needs windows at {missing[:3]}, not in the dense cache; re-score with --hop")
    return pool_scores([by_start[s] for s in starts], pooling)  # type: ignore[arg-type]


def pooled(
    scores: dict[str, dict[str, dict[str, Any]]], cond: str, name: str, policy: tuple[str, int | None, int, str]
) -> list[float]:
    _, hop, k, pooling = policy
    return [utterance_score(e, WINDOW_SAMPLES, hop, k, pooling) for e in scores[f"{cond}/{name}"].values()]


def analyse(
    scores: dict[str, dict[str, dict[str, Any]]], threshold: float, conditions: list[str]
) -> dict[str, dict[str, Any]]:
    report: dict[str, dict[str, Any]] = {}
    for cond in conditions:
        for policy in POLICIES:
            bona = {b: pooled(scores, cond, b, policy) for b in ("librispeech", "fsdd")}
            for atk in ("espeak", "piper"):
                spoof = pooled(scores, cond, atk, policy)
                for bname, b in [*bona.items(), ("librispeech+fsdd", bona["librispeech"] + bona["fsdd"])]:
                    report[f"{cond}|{policy[0]}|{atk}|{bname}"] = spoof_metrics(b, spoof, threshold).as_dict()
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/voiceauth-antispoof-eval"))
    ap.add_argument("--libri", type=int, default=40)
    ap.add_argument("--fsdd", type=int, default=24)
    ap.add_argument("--espeak", type=int, default=24)
    ap.add_argument("--piper", type=int, default=40)
    ap.add_argument("--conditions", default="pipeline,telephone-trim,16k-trim", help=condition_audio.__doc__)
    ap.add_argument("--threshold", type=float, default=None, help="default: Settings().antispoof_threshold")
    ap.add_argument("--score-only", action="store_true", help="fill the window cache, no report")
    ap.add_argument(
        "--cache",
        default="window_scores.json",
        help="window score cache file in --work (comma-separated: merged, for the report)",
    )
    ap.add_argument("--top", type=int, default=6, help="policies listed per condition (best EER, piper vs all)")
    args = ap.parse_args()
    settings = Settings()
    threshold = args.threshold if args.threshold is not None else float(settings.antispoof_threshold or 0.0)
    args.work.mkdir(parents=True, exist_ok=True)
    conditions = args.conditions.split(",")
    caches = [args.work / name for name in args.cache.split(",")]
    cache = caches[0]
    if not args.score_only and all(c.exists() for c in caches):
        scores: dict[str, dict[str, dict[str, Any]]] = {}
        for c in caches:
            scores.update(json.loads(c.read_text()))
    else:
        cm = Countermeasure(ensure_model(settings, AASIST), hop=DENSE_HOP, trim=False)
        t0 = time.time()
        sets = build_sets(args.work, args.libri, args.fsdd, args.espeak, args.piper)
        print(f"sets built in {time.time() - t0:.0f} s: " + ", ".join(f"{k}={len(v)}" for k, v in sets.items()))
        scores = score_all(cm, sets, cache, conditions)
        if args.score_only:
            return
    report = analyse(scores, threshold, conditions)
    configured = (
        f"{settings.antispoof_pooling or 'min'}-k{settings.antispoof_max_windows or 8}"
        f"-hop{(settings.antispoof_hop_samples or WINDOW_SAMPLES // 2) // 16_150}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "antispoof.json").write_text(
        json.dumps(
            {"threshold": threshold, "configured_policy": configured, "conditions": conditions, "results": report},
            indent=1,
        )
    )
    print(f"threshold {threshold:g}; configured policy {configured}")
    print("| channel | policy | attack | bona fide | EER % | APCER % | BPCER % |")
    print("|---|---|---|---|---|---|---|")
    for cond in conditions:
        ranked = sorted({p[0] for p in POLICIES}, key=lambda n: report[f"{cond}|{n}|piper|librispeech+fsdd"]["eer"])
        for name in [configured, *[n for n in ranked[: args.top] if n != configured]]:
            for atk in ("piper", "espeak"):
                for bname in ("librispeech", "fsdd", "librispeech+fsdd"):
                    m = report[f"{cond}|{name}|{atk}|{bname}"]
                    print(
                        f"| {cond} | {name} | {atk} | {bname} | {100 * m['eer']:.1f} | {100 * m['apcer']:.1f} | "
                        f"{100 * m['bpcer']:.1f} |"
                    )


if __name__ == "__main__":
    main()
