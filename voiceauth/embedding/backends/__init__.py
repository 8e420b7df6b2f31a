"""Interchangeable embedding backends behind the ``EmbeddingEngine`` protocol, chosen by name.

=================  =====================================================================================
``speechbrain``    :class:`~voiceauth.embedding.ecapa.EcapaEngine`: SpeechBrain's modules, fp32 or bf16 autocast
``fused``          :class:`FusedEngine` fp32 (CPU) / fp16-bf16 autocast (CUDA): BatchNorm folded, channels-last
``fused-int8``     :class:`FusedEngine` with int8 GEMMs (FBGEMM, AVX512-VNNI) (CPU)
``onnx-int8``      :class:`~voiceauth.embedding.backends.onnx.OnnxEngine`: the same int8 plan in ONNX Runtime (CPU;
                   optional packages ``voiceauth[onnx]``; the fastest where OpenMP threads sleep, see ``auto``)
``openvino-int8``  :class:`~voiceauth.embedding.backends.openvino.OpenVinoEngine`: fused-int8's int8 layers in OpenVINO
                   (int8 per-channel weights, activations quantised per frame and channel group), the rest bf16
                   where native (CPU; optional packages ``voiceauth[openvino]``)
``openvino-bf16``  the same engine, every layer in bf16 (CPUs with AMX or AVX512-BF16)
``auto``           the production choice for the device (see :func:`resolve_backend`)
=================  =====================================================================================

The benchmark suite (``python -m benchmarks``) measures every backend against SpeechBrain's own pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voiceauth.embedding.backends.engine import FusedEngine
from voiceauth.embedding.backends.int8 import int8_available
from voiceauth.embedding.base import EmbeddingEngine
from voiceauth.embedding.ecapa import EcapaEngine
from voiceauth.embedding.precision import cpu_has_amx, cpu_has_bf16, openmp_threads_sleep, resolve_device
from voiceauth.errors import ConfigError

__all__ = ["BACKENDS", "FusedEngine", "create_backend", "resolve_backend"]

BACKENDS = ("auto", "speechbrain", "fused", "fused-int8", "onnx-int8", "openvino-int8", "openvino-bf16")


def resolve_backend(name: str, device: str) -> str:
    """``auto`` -> the fastest backend that holds accuracy on ``device`` (measured by ``python -m benchmarks``).

    CUDA: ``fused`` (fp16/bf16 autocast). CPU with AMX: ``onnx-int8`` where ONNX Runtime is installed, else
    ``fused`` in bf16 (2-core Xeon with AMX, 3 s, 2 threads, either OpenMP wait policy: onnx-int8 53-54 ms,
    fused-int8 70-77 ms, fused-bf16 75-85 ms, SpeechBrain 650-740 ms). Other x86 CPUs, AVX512-BF16 ones without
    AMX included (AMD Zen 4: int8 VNNI runs 1.4x faster than native bf16 there): int8, in ONNX Runtime
    (``onnx-int8``) when it is installed and OpenMP threads sleep (``OMP_WAIT_POLICY=PASSIVE``, the ``voiceauth``
    command's default), else ``fused-int8``. Measured on Zen 4, 3 s, 2 threads, back to back: PASSIVE onnx-int8
    36-37 ms vs fused-int8 50-52 ms; torch's spin-waiting default fused-int8 38 ms vs onnx-int8 40-42 ms.
    """
    if name not in BACKENDS:
        raise ConfigError(f"embedding backend {name!r} is not supported; use one of {', '.join(BACKENDS)}")
    if name != "auto":
        return name
    if device == "cuda" or not int8_available():
        return "fused"
    from voiceauth.embedding.backends.onnx import onnxruntime_available

    if cpu_has_amx():
        return "onnx-int8" if onnxruntime_available() else "fused"
    if openmp_threads_sleep() and onnxruntime_available():
        return "onnx-int8"
    return "fused-int8"


def create_backend(
    name: str,
    model_dir: Path,
    precision: str = "auto",
    device: str = "auto",
    num_threads: int | None = None,
    verify: bool = True,
    telephone_adapter: Path | None = None,
) -> EmbeddingEngine:
    """Build backend ``name`` on the verified model files; ``precision`` applies to ``speechbrain``/``fused``.

    ``telephone_adapter``: folder of the telephone-channel adaptation (:mod:`voiceauth.embedding.telephone`) the
    engine uses for telephone-band audio; None = the released network for every band."""
    dev = resolve_device(device)
    # an explicit precision with backend "auto" means: the fused engine in that precision
    backend = "fused" if name == "auto" and precision != "auto" else resolve_backend(name, dev)
    common: dict[str, Any] = {
        "device": dev,
        "num_threads": num_threads,
        "verify": verify,
        "telephone_adapter": telephone_adapter,
    }
    if backend == "speechbrain":
        return EcapaEngine(model_dir, precision=precision, **common)
    if backend.startswith("openvino-"):
        mode = backend.removeprefix("openvino-")
        if precision not in ("auto", mode):
            raise ConfigError(f"backend {backend!r} runs in {mode}; precision {precision!r} does not apply")
        from voiceauth.embedding.backends.openvino import OpenVinoEngine  # optional dependency: imported on use

        return OpenVinoEngine(model_dir, mode=mode, **common)
    if backend in ("onnx-int8", "fused-int8"):
        if precision not in ("auto", "int8"):
            raise ConfigError(f"backend {backend!r} runs in int8; precision {precision!r} does not apply")
        if backend == "fused-int8":
            return FusedEngine(model_dir, mode="int8", **common)
        from voiceauth.embedding.backends.onnx import OnnxEngine  # optional dependency: imported on use

        return OnnxEngine(model_dir, mode="int8", **common)
    mode = precision
    if mode == "auto" and dev == "cpu":
        mode = "bf16" if cpu_has_bf16() else "fp32"
    return FusedEngine(model_dir, mode=mode, **common)
