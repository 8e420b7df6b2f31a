"""The roofline of the embedding core: this machine's GEMM peak per precision, and each backend's work and plan.

Measured in the same run as the backends, on the same thread count:

- :func:`machine_peaks`: the best rate of a large square matrix multiply in fp32 (``torch.matmul``), bf16
  (``torch.matmul`` on bf16 tensors: oneDNN's AVX512-BF16 or AMX kernels) and int8 (``torch._int_mm``, int8 x int8
  -> int32: VNNI or AMX-INT8), in GFLOP/s (one multiply-add = 2 operations, for int8 too);
- :func:`ecapa_flops`: the multiply-adds of ECAPA-TDNN for one utterance of ``frames`` frames, layer by layer,
  counted from the layer shapes (checked against ``torch.utils.flop_counter`` on the real model by the tests);
- :func:`precision_plan`: which precision each layer of a backend computes in (its int8 / bf16 / fp32 layers);
- :func:`roofline`: achieved GFLOP/s, the time the plan would take at this machine's peaks (``bound_ms``) and
  ``roofline_fraction = bound_ms / measured ms`` (1.0 = every layer at the peak of its precision).

Only the GEMMs are counted (they are > 99% of the arithmetic); the front end (resampling, Fbank), the
element-wise work and the memory traffic are all in the measured time, so the fraction is what the whole call
achieves of the arithmetic limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from voiceauth.embedding.backends.int8 import BF16_LAYERS, FP32_LAYERS
from voiceauth.embedding.precision import cpu_flags, cpu_has_bf16

__all__ = [
    "PRECISIONS",
    "cpu_info",
    "ecapa_flops",
    "frames_of",
    "gemm_peak",
    "machine_peaks",
    "precision_plan",
    "roofline",
]

PRECISIONS = ("fp32", "bf16", "int8")
CHANNELS, MFA, ATT, EMB, SCALE, MELS = 1024, 3072, 128, 192, 8, 80
#: ISA extensions that decide the GEMM peaks (reported with every roofline)
ISA = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile")


def cpu_info() -> dict[str, Any]:
    """CPU model, the flags that set its GEMM peaks, and the logical CPU count."""
    import os
    from pathlib import Path

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = cpu_flags()
    return {"model": model, "flags": [f for f in ISA if f in flags], "logical_cpus": os.cpu_count()}


# -- machine peaks -----------------------------------------------------------------------------------------


def _best_rate(fn: Callable[[], object], flop: float, repeats: int) -> float:
    fn()  # warm-up: thread pool, packing buffers
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return flop / best / 1e9


def gemm_peak(precision: str, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of the best of ``repeats`` ``n x n @ n x n`` products in ``precision`` on torch's current threads."""
    gen = torch.Generator().manual_seed(0)
    if precision == "int8":
        a = torch.randint(-127, 128, (n, n), dtype=torch.int8, generator=gen)
        b = torch.randint(-127, 128, (n, n), dtype=torch.int8, generator=gen)
        return _best_rate(lambda: torch._int_mm(a, b), 2.0 * n**3, repeats)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    x = torch.randn(n, n, generator=gen).to(dtype)
    y = torch.randn(n, n, generator=gen).to(dtype)
    return _best_rate(lambda: torch.matmul(x, y), 2.0 * n**3, repeats)


def machine_peaks(quick: bool = False) -> dict[str, Any]:
    """fp32 / bf16 / int8 GEMM peaks (GFLOP/s) on torch's current thread count; bf16 only where it is native."""
    n, repeats = (1024, 3) if quick else (2048, 5)
    peaks: dict[str, float] = {}
    for p in PRECISIONS:
        if p == "bf16" and not cpu_has_bf16():
            continue  # emulated bf16 is slower than fp32: no backend computes in it here
        try:
            peaks[p] = round(gemm_peak(p, n, repeats), 1)
        except RuntimeError:  # no int8 GEMM kernel on this build / CPU
            continue
    return {
        "gflops": peaks,
        "threads": torch.get_num_threads(),
        "method": f"best of {repeats} {n}x{n} products: torch.matmul fp32/bf16, torch._int_mm int8 -> int32",
    }


# -- work per utterance -------------------------------------------------------------------------------------


def frames_of(samples_16k: int) -> int:
    """Fbank frames of a 16 kHz waveform (10 ms hop, centred): 301 for 3 s."""
    return samples_16k // 160 + 1


def _layers(reference: bool) -> dict[str, tuple[int, int, bool]]:
    """Layer name -> (inputs, outputs, per frame?) of ECAPA-TDNN's GEMMs (names of ``FusedEcapa``)."""
    layers: dict[str, tuple[int, int, bool]] = {"block0": (MELS * 5, CHANNELS, True)}
    width = CHANNELS // SCALE
    for b in range(3):
        layers[f"blocks.{b}.tdnn1"] = (CHANNELS, CHANNELS, True)
        for i in range(SCALE - 1):
            layers[f"blocks.{b}.res2.{i}"] = (width * 3, width, True)
        layers[f"blocks.{b}.tdnn2"] = (CHANNELS, CHANNELS, True)
        layers[f"blocks.{b}.se"] = (2 * CHANNELS, ATT, False)  # 1024 -> 128 -> 1024 per utterance
    layers["mfa"] = (MFA, MFA, True)
    if reference:  # SpeechBrain multiplies the whole [x, mean, std] (9216 wide) for every frame
        layers["att"] = (3 * MFA, ATT, True)
    else:  # FusedEcapa: the mean/std part once per utterance
        layers["att"] = (MFA, ATT, True)
        layers["att_ctx"] = (2 * MFA, ATT, False)
    layers["att_conv"] = (ATT, MFA, True)
    layers["fc"] = (2 * MFA, EMB, False)
    return layers


def ecapa_flops(frames: int, reference: bool = False) -> dict[str, float]:
    """Operations (2 per multiply-add) of each GEMM of ECAPA-TDNN for one utterance of ``frames`` frames.

    ``reference``: SpeechBrain's own module (its attention layer multiplies the 9216-wide input on every frame);
    else :class:`~voiceauth.embedding.backends.fused.FusedEcapa`, which every other backend runs. 3 s: 10.8 GFLOP
    fused, 11.3 GFLOP SpeechBrain.
    """
    return {name: 2.0 * k * o * (frames if per_frame else 1) for name, (k, o, per_frame) in _layers(reference).items()}


def precision_plan(subject: str, layers: Mapping[str, float]) -> dict[str, str]:
    """Layer name -> the precision subject ``subject`` computes it in (per-utterance layers: fp32)."""
    family, _, mode = subject.partition("-")
    per_utt = {"att_ctx", "fc"} | {f"blocks.{b}.se" for b in range(3)}
    if mode.endswith("bf16") or mode.endswith("fp16"):
        base = "bf16" if mode.endswith("bf16") else "fp16"
        return {n: ("fp32" if n in per_utt and family == "fused" else base) for n in layers}
    if "int8" not in mode:
        return dict.fromkeys(layers, "fp32")
    if mode == "int8-v1":
        big = {f"blocks.{b}.tdnn{i}" for b in range(3) for i in (1, 2)} - {"blocks.0.tdnn1"} | {"mfa"}
        return {n: "int8" if n in big else "fp32" for n in layers}
    bf16 = set(BF16_LAYERS) if family == "fused" and cpu_has_bf16() else set()
    if family == "openvino" and cpu_has_bf16():  # OpenVINO's bf16 inference precision: every non-int8 layer
        return {n: "bf16" if n in per_utt or n in FP32_LAYERS else "int8" for n in layers}
    plan: dict[str, str] = {}
    for n in layers:
        if n in per_utt:
            plan[n] = "fp32"
        elif n in FP32_LAYERS:
            plan[n] = "bf16" if n in bf16 else "fp32"
        else:
            plan[n] = "int8"
    return plan


def roofline(subject: str, frames: int | Sequence[int], ms: float, peaks: Mapping[str, float]) -> dict[str, Any]:
    """Achieved rate of utterances of ``frames`` frames (one, or a batch) embedded in ``ms`` by ``subject``.

    ``bound_ms``: the GEMMs of its plan, each at the peak of its precision (fp16 counts as bf16; a precision
    without a measured peak counts at the fp32 peak); ``roofline_fraction = bound_ms / ms``. ``precision``: the
    one most of the operations are in, and ``peak_fraction`` the achieved rate over that precision's peak alone.
    """
    reference = subject.startswith(("reference", "speechbrain"))
    by_prec: dict[str, float] = {}
    for n in [frames] if isinstance(frames, int) else frames:
        layers = ecapa_flops(n, reference=reference)
        plan = precision_plan(subject, layers)
        for name, flop in layers.items():
            p = "bf16" if plan[name] == "fp16" else plan[name]
            by_prec[p] = by_prec.get(p, 0.0) + flop
    total = sum(by_prec.values())
    bound_s = sum(f / (peaks.get(p, peaks["fp32"]) * 1e9) for p, f in by_prec.items())
    main = max(by_prec, key=lambda p: by_prec[p])
    achieved = total / (ms / 1e3) / 1e9
    return {
        "gflop": round(total / 1e9, 3),
        "share": {p: round(f / total, 3) for p, f in sorted(by_prec.items())},
        "gflops": round(achieved, 1),
        "precision": main,
        "peak_fraction": round(achieved / peaks.get(main, peaks["fp32"]), 3),
        "bound_ms": round(bound_s * 1e3, 2),
        "roofline_fraction": round(bound_s * 1e3 / ms, 3),
    }
