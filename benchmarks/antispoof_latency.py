"""Anti-spoofing latency on CPU: AASIST per 4 s window (64,600 samples), and the replay fingerprint check.

Subjects, timed round-robin in the same run so that load from other processes falls on all alike:

* ``reference``: the network as a plain eager port of the release runs it (contiguous NCHW tensors, batch 1);
* ``countermeasure``: the production path (:class:`Countermeasure`: channels-last convolutions, batch 1);
* ``countermeasure-b4``: the same, 4 windows in one batch (per window);
* ``fingerprint+compare``: the replay check for one 4 s attempt against one remembered attempt.

    .venv/bin/python benchmarks/antispoof_latency.py --repeats 5

Writes ``benchmarks/results/antispoof_latency.json`` and prints a markdown table (median ms, ratio to reference).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from models.fetch import ensure_model
from models.registry import AASIST
from voiceauth.antispoof.countermeasure import Countermeasure
from voiceauth.antispoof.replay import compare, fingerprint
from voiceauth.antispoof.windows import WINDOW_SAMPLES, tile_to
from voiceauth.config import Settings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "antispoof_latency.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = ensure_model(Settings(), AASIST)
    cm = Countermeasure(model_dir, max_windows=1)
    reference = Countermeasure(model_dir, max_windows=1)
    reference._net = reference._net.to(memory_format=torch.contiguous_format)  # plain eager port, as released

    speech, rate = sf.read(ROOT / "audio_samples" / "librispeech_1034-121119-0000.flac", dtype="float32")
    assert rate == 16_000
    window = tile_to(speech, WINDOW_SAMPLES)
    one = window[None, :]
    four = np.repeat(one, 4, axis=0)
    fp_old = fingerprint(window, 16_000)

    subjects: dict[str, tuple[Callable[[], object], int]] = {
        "reference": (lambda: reference.score_windows(one), 1),
        "countermeasure": (lambda: cm.score_windows(one), 1),
        "countermeasure-b4": (lambda: cm.score_windows(four), 4),
        "fingerprint+compare": (lambda: compare(fingerprint(window * 0.9, 16_000), fp_old), 1),
    }
    ref_out = reference.score_windows(one)
    prod_out = cm.score_windows(one)
    max_diff = float(np.abs(ref_out - prod_out).max())
    for fn, _ in subjects.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in subjects}
    for _ in range(args.repeats):
        for name, (fn, per) in subjects.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1000.0 / per)
    med = {k: float(np.median(v)) for k, v in times.items()}
    data = {
        "window_samples": WINDOW_SAMPLES,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "median_ms_per_window": med,
        "ratio_to_reference": {k: v / med["reference"] for k, v in med.items()},
        "max_abs_score_diff_vs_reference": max_diff,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    print(f"| subject | median ms / 4 s window | ratio to reference |   (threads {torch.get_num_threads()})")
    print("|---|---|---|")
    for k, v in med.items():
        print(f"| {k} | {v:.0f} | {v / med['reference']:.2f} |")
    print(f"max |score difference| production vs reference: {max_diff:.2e}")


if __name__ == "__main__":
    main()
