"""int8 dynamic quantisation of :class:`FusedEcapa`'s GEMMs with FBGEMM (AVX512-VNNI / AVX2 kernels).

Weights are quantised once, symmetric per output channel; activations are quantised per call (per tensor,
from their observed range), the product accumulates in int32 and is rescaled to fp32 with the bias added.
Only the GEMM-heavy layers are quantised (see :meth:`FusedEcapa.big_layers`); the small res2net convolutions,
the first layer, the pooling statistics and the final linear layer stay fp32. The accuracy guard in the
benchmark (cosine to fp32, EER) decides whether this is used in production.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

__all__ = ["FP32_LAYERS", "Int8Linear", "cpu_has_vnni", "int8_available", "quantize_model"]


@lru_cache(maxsize=1)
def cpu_has_vnni() -> bool:
    """True when the CPU has AVX512-VNNI or AVX-VNNI (int8 dot products without int16 saturation)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return bool({"avx512_vnni", "avx_vnni"} & flags)
    return False


def int8_available() -> bool:
    """FBGEMM's dynamic int8 linear kernels exist in this torch build (x86 CPUs)."""
    return "fbgemm" in torch.backends.quantized.supported_engines


class Int8Linear:
    """``y = x @ W.T + b`` with W int8 per-channel and x quantised dynamically; callable on ``[..., K]``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        w = weight.detach().float().contiguous()
        scales = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12).double()
        zeros = torch.zeros(w.shape[0], dtype=torch.long)
        with warnings.catch_warnings():
            # torch marks quantised tensor creation as deprecated; the FBGEMM kernels themselves are current.
            warnings.simplefilter("ignore")
            torch.backends.quantized.engine = "fbgemm"
            qw = torch.quantize_per_channel(w, scales, zeros, 0, torch.qint8)
            self._packed: Any = torch.ops.quantized.linear_prepack(qw, None)
        self.bias = None if bias is None else bias.detach().float().contiguous()
        # Without VNNI, FBGEMM's u8*s8 pairs accumulate in int16 and can saturate: use 7-bit activations.
        self._reduce_range = not cpu_has_vnni()
        self.out_features = int(w.shape[0])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        # Per-row scaling makes FBGEMM's per-tensor activation quantisation act per frame: every row spans
        # about [-1, 1], so quiet frames keep their resolution next to loud ones.
        rows = x2.abs().amax(dim=1, keepdim=True).clamp_(min=1e-12)
        y = torch.ops.quantized.linear_dynamic(x2 / rows, self._packed, self._reduce_range)
        y = y.mul_(rows) if self.bias is None else torch.addcmul(self.bias, y, rows)
        return y.reshape(*shape[:-1], self.out_features)


#: Layers kept in fp32 although big: measured alone in int8, the first block's input 1x1 conv moves the
#: embedding most (cosine 0.99965 vs >= 0.9998 for each of the others, FSDD + LibriSpeech speech).
FP32_LAYERS = ("blocks.0.tdnn1",)


def quantize_model(model: torch.nn.Module, keep_fp32: tuple[str, ...] = FP32_LAYERS) -> torch.nn.Module:
    """Give each of ``model.big_layers()`` not named in ``keep_fp32`` an int8 GEMM (in place)."""
    names = {id(m): n for n, m in model.named_modules()}
    for layer in model.big_layers():  # type: ignore[operator]
        if names.get(id(layer)) not in keep_fp32:
            layer.linear = Int8Linear(layer.weight, layer.bias)
    return model
