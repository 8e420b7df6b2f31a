"""torch.compile probe: :class:`FusedEcapa` compiled by inductor (CPU) for one fixed length, against eager.

``python -m benchmarks.compile_probe --modes fp32,bf16,int8 --threads 1``: one 3 s utterance (301 frames, one
shape bucket), process CPU time per network call (median), compile time, cosine of the compiled output to eager.
Nothing here is used by the service (see ``benchmarks/results/embedding-README.md`` for the numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from benchmarks.data import RATE, SpeechSource
from voiceauth.embedding.backends.engine import FusedEngine

__all__ = ["main"]


def _cpu_ms(fns: Sequence[Callable[[], torch.Tensor]], repeats: int) -> list[float]:
    """Median process CPU ms of each of ``fns``, timed round-robin (other load falls on all alike)."""
    out: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for times, fn in zip(out, fns, strict=True):
            c0 = time.process_time()
            fn()
            times.append((time.process_time() - c0) * 1e3)
    return [float(np.median(t)) for t in out]


def _measure(engine: FusedEngine, feats: torch.Tensor, repeats: int) -> dict[str, float]:
    frames = torch.tensor([feats.shape[1]])
    model = engine.model
    model.always_mask = True  # no data-dependent branch in the graph
    compiled = torch.compile(model, backend="inductor", dynamic=False)

    def eager() -> torch.Tensor:
        with torch.inference_mode(), engine._autocast():
            out: torch.Tensor = model(feats, frames).float()
        return out

    def comp() -> torch.Tensor:
        with torch.inference_mode(), engine._autocast():
            out: torch.Tensor = compiled(feats, frames).float()
        return out

    t0 = time.perf_counter()
    out_c = comp()
    compile_s = time.perf_counter() - t0
    cos = float(torch.nn.functional.cosine_similarity(out_c, eager()).min())
    eager_ms, comp_ms = _cpu_ms([eager, comp], repeats)
    return {
        "eager_cpu_ms": round(eager_ms, 1),
        "compiled_cpu_ms": round(comp_ms, 1),
        "gain": round(eager_ms / comp_ms, 3),
        "compile_s": round(compile_s, 1),
        "cosine_compiled_to_eager": round(cos, 6),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="fp32,bf16")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)

    from models.fetch import ensure_model
    from voiceauth.config import Settings

    torch.set_num_threads(args.threads)
    model_dir = ensure_model(Settings(), fetch=False)
    source = SpeechSource()
    wav = source.string(source.speakers[0], args.seconds)
    rows = {}
    for mode in args.modes.split(","):
        engine = FusedEngine(model_dir, mode=mode, device="cpu", verify=False)
        feats = engine.features(engine._prepare(wav, RATE))[None]
        rows[mode] = _measure(engine, feats, args.repeats)
    doc = {
        "threads": args.threads,
        "seconds": args.seconds,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "modes": rows,
    }
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
