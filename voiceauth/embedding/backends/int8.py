"""int8 dynamic quantisation of :class:`FusedEcapa`'s GEMMs with FBGEMM (AVX512-VNNI / AVX2 kernels).

Weights are quantised once, symmetric per output channel; activations are quantised per call (per tensor,
from their observed range), the product accumulates in int32 and is rescaled to fp32 with the bias added.
Every GEMM is quantised except the layers the embedding is most sensitive to (:data:`FP32_LAYERS`: the first layer,
the first block's input layer and the small res2net convolutions); the pooling statistics, softmax and the final
linear layer stay fp32. The accuracy guard in the
benchmark (cosine to fp32, EER) decides whether this is used in production.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from typing import Any

import torch

from voiceauth.embedding.backends.fused import FusedEcapa
from voiceauth.embedding.precision import cpu_flags

__all__ = ["BF16_LAYERS", "FP32_LAYERS", "Bf16Linear", "Int8Linear", "cpu_has_vnni", "int8_available", "quantize_model"]


def cpu_has_vnni() -> bool:
    """True when the CPU has AVX512-VNNI or AVX-VNNI (int8 dot products without int16 saturation)."""
    return bool({"avx512_vnni", "avx_vnni"} & cpu_flags())


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


class Bf16Linear:
    """``y = x @ W.T + b`` with bf16 inputs and weights, fp32 accumulation and output (AVX512-BF16 dot products)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        self.weight = weight.detach().to(torch.bfloat16).contiguous()
        self.bias = None if bias is None else bias.detach().float().contiguous()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.nn.functional.linear(x.to(torch.bfloat16), self.weight).float()
        return y if self.bias is None else y.add_(self.bias)


#: Layers kept in fp32 (the rest of the network's GEMMs run in int8), chosen by the minimum cosine to fp32 over real
#: telephone speech. Measured one at a time in int8 on 114 LibriSpeech pieces through G.711 mu-law: the first layer
#: (on the Fbank features) 0.9971, the first block's input 1x1 layer 0.9991, the res2net convolutions 0.9993, the
#: attention layers 0.9995 (no loss). On 72 FSDD strings of 1-2 s the res2net convolutions in int8 drop the minimum
#: from 0.9994 to 0.9987, under the accuracy guard's 0.999; so they stay fp32 (they are 6% of the network's work).
FP32_LAYERS: tuple[str, ...] = (
    "block0",
    "blocks.0.tdnn1",
    *(f"blocks.{b}.res2.{i}" for b in range(3) for i in range(7)),
)


#: Of :data:`FP32_LAYERS`, those run with bf16 inputs (fp32 accumulation) on CPUs with native bf16 dot products:
#: the res2net convolutions (1.5x faster there; minimum cosine on the 1-2 s FSDD strings unchanged, 0.9994). With
#: the first block's input layer in bf16 as well the minimum fell to 0.9990, so that one stays fp32.
BF16_LAYERS: tuple[str, ...] = tuple(n for n in FP32_LAYERS if ".res2." in n)


def quantize_model(
    model: FusedEcapa, keep_fp32: Collection[str] = FP32_LAYERS, bf16_layers: Collection[str] = ()
) -> FusedEcapa:
    """Give every GEMM of ``model`` not named in ``keep_fp32`` an int8 kernel (in place).

    Names are :meth:`FusedEcapa.gemm_layers` keys plus ``att_conv`` (the attention's 128 -> 3072 output layer).
    Layers of ``keep_fp32`` also named in ``bf16_layers`` get a :class:`Bf16Linear` (use it only where the CPU has
    AVX512-BF16 or AMX: emulated bf16 is slower than fp32).
    """
    for name, layer in model.gemm_layers().items():
        if name not in keep_fp32:
            layer.linear = Int8Linear(layer.weight, layer.bias)
        else:
            layer.linear = Bf16Linear(layer.weight, layer.bias) if name in bf16_layers else None
    model.att_conv = None if "att_conv" in keep_fp32 else Int8Linear(model.att_conv_w, model.att_conv_b)
    return model
