"""The replay check's cost per attempt: the vectorised fingerprint comparison against the alignment-by-alignment
definition, in the same run, on real speech.

Each verification (upload or call) fingerprints its speech and compares it with every earlier attempt of the
claimed speaker kept for ``replay_retention_s`` (30 days by default), so a frequent caller's history grows. The
attempts here are FSDD digit strings (10 digits, ~4 s of speech) of one speaker, the probe a new string of the same
speaker. Both implementations must find the same best alignment for every pair (checked).

    .venv/bin/python -m benchmarks.replay_check --history 10,25,49 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from benchmarks.measure import environment
from voiceauth.antispoof.replay import MIN_OVERLAP, Fingerprint, compare, find_replay, fingerprint

ROOT = Path(__file__).resolve().parents[1]
FSDD = ROOT.parent / "shared" / "data" / "fsdd"
RESULTS = ROOT / "benchmarks" / "results"


def compare_by_alignment(a: Fingerprint, b: Fingerprint, min_overlap: int = MIN_OVERLAP) -> tuple[float, int, int]:
    """The definition (and the implementation before the vectorised one): every alignment of ``b`` against ``a``
    in turn, the BER over the active frames both share; the lowest one (ber, offset, overlap)."""
    best = (1.0, 0, 0)
    for off in range(-(b.frames - 1), a.frames):
        a0, b0 = max(0, off), max(0, -off)
        n = min(a.frames - a0, b.frames - b0)
        mask = a.active[a0 : a0 + n] & b.active[b0 : b0 + n]
        k = int(mask.sum())
        if k < min_overlap:
            continue
        xor = np.bitwise_xor(a.bits[a0 : a0 + n][mask], b.bits[b0 : b0 + n][mask])
        ber = float(np.unpackbits(xor.astype("<u4").view(np.uint8)).sum()) / (32.0 * k)
        if ber < best[0]:
            best = (ber, off, k)
    return best


def _attempt(speaker: str, index: int) -> Fingerprint:
    parts = [sf.read(FSDD / f"{d}_{speaker}_{index}.wav", dtype="float32")[0] for d in range(10)]
    return fingerprint(np.concatenate(parts), 8000)


def run(history_sizes: list[int], repeats: int, speaker: str = "george") -> dict[str, Any]:
    history = [_attempt(speaker, i) for i in range(1, max(history_sizes) + 1)]
    probe = _attempt(speaker, 0)
    for h in history:  # the same answer for every pair
        m = compare(probe, h)
        assert (m.ber, m.offset, m.overlap) == compare_by_alignment(probe, h)
    rows: list[dict[str, Any]] = []
    for n in history_sizes:
        times: dict[str, list[float]] = {"reference": [], "production": []}
        for _ in range(repeats):
            t0 = time.perf_counter()
            for h in history[:n]:
                compare_by_alignment(probe, h)
            times["reference"].append((time.perf_counter() - t0) * 1000.0)
            t0 = time.perf_counter()
            find_replay(probe, [(0.0, h) for h in history[:n]], now=0.0, retention_s=1.0)  # production: all of them
            times["production"].append((time.perf_counter() - t0) * 1000.0)
        ref, prod = float(np.median(times["reference"])), float(np.median(times["production"]))
        rows.append({"history": n, "reference_ms": ref, "production_ms": prod, "speedup": ref / prod})
    return {
        "command": "python -m benchmarks.replay_check",
        "speaker": speaker,
        "probe_frames": probe.frames,
        "attempt_frames_median": float(np.median([h.frames for h in history])),
        "repeats": repeats,
        "identical_matches": True,
        "rows": rows,
        "environment": environment("cpu"),
    }


def markdown(res: dict[str, Any]) -> str:
    lines = [
        "# Replay check: cost per attempt against the speaker's earlier attempts",
        "",
        f"`{res['command']}`; probe and attempts: FSDD digit strings of {res['speaker']} "
        f"({res['probe_frames']} frames of 10 ms; attempts median {res['attempt_frames_median']:.0f}); "
        f"median of {res['repeats']} runs. The same best alignment for every pair in both implementations.",
        "",
        "| earlier attempts | alignment by alignment (ms) | production `find_replay` (ms) | speed-up |",
        "|---|---|---|---|",
    ]
    for r in res["rows"]:
        lines.append(f"| {r['history']} | {r['reference_ms']:.1f} | {r['production_ms']:.1f} | {r['speedup']:.1f}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--history", default="10,25,49", help="comma-separated history sizes (at most 49)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.history.split(",") if x.strip()]
    if not sizes or min(sizes) < 1 or max(sizes) > 49:
        ap.error(f"--history {args.history!r}: give sizes from 1 to 49 (FSDD has 50 takes per digit)")
    res = run(sizes, args.repeats)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "replay_check.json").write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    (args.out / "replay_check.md").write_text(markdown(res), encoding="utf-8")
    print(markdown(res))


if __name__ == "__main__":
    main()
