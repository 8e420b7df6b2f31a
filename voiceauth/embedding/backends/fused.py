"""ECAPA-TDNN re-implemented for inference: the same real weights, BatchNorm folded, channels-last matmuls.

SpeechBrain's ECAPA-TDNN (``speechbrain.lobes.models.ECAPA_TDNN``) runs every layer through a Conv1d wrapper that
reflect-pads and transposes, keeps BatchNorm as separate ops, and evaluates the 9216-wide attention input of its
pooling layer frame by frame. This module computes the same function from the same checkpoint with:

- activations kept as ``[batch, time, channels]`` so every 1x1 convolution is one GEMM (``F.linear``);
- kernel-3/5 dilated convolutions as reflect padding + im2col + one GEMM (identical to SpeechBrain's "same"
  reflect padding);
- BatchNorm after ReLU folded: ``bn(relu(z)) = relu(s*z) + t`` when every scale ``s > 0`` (checked per layer;
  otherwise the affine is applied explicitly), and ``asp_bn`` folded into the final linear layer exactly;
- the attentive pooling's global-context input ``[x, mean, std]`` split so the per-utterance ``mean``/``std``
  parts are multiplied once, not once per frame (one third of that layer's cost);
- optional int8 dynamic quantisation of the GEMMs (see :mod:`voiceauth.embedding.backends.int8`).

Masks follow SpeechBrain exactly: frame ``j`` of utterance ``i`` is valid when ``j < lengths[i] * T``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from voiceauth.errors import ModelError

__all__ = ["BN_EPS", "FusedEcapa", "expected_state_keys", "reflect_index"]

BN_EPS = 1e-5  # speechbrain.nnet.normalization.BatchNorm1d default
STAT_EPS = 1e-12  # AttentiveStatisticsPooling.eps
CHANNELS = 1024
MFA_CHANNELS = 3072
SCALE = 8  # res2net scale
DILATIONS = (2, 3, 4)

Linear = Callable[[torch.Tensor], torch.Tensor]


def _tdnn_keys(prefix: str) -> list[str]:
    n = f"{prefix}.norm.norm."
    return [f"{prefix}.conv.conv.weight", f"{prefix}.conv.conv.bias"] + [
        n + s for s in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    ]


def expected_state_keys() -> list[str]:
    """Every key of SpeechBrain's ECAPA-TDNN state dict for the spkrec-ecapa-voxceleb configuration."""
    keys = _tdnn_keys("blocks.0")
    for b in (1, 2, 3):
        p = f"blocks.{b}"
        keys += _tdnn_keys(f"{p}.tdnn1")
        for i in range(SCALE - 1):
            keys += _tdnn_keys(f"{p}.res2net_block.blocks.{i}")
        keys += _tdnn_keys(f"{p}.tdnn2")
        keys += [f"{p}.se_block.conv{j}.conv.{w}" for j in (1, 2) for w in ("weight", "bias")]
    keys += _tdnn_keys("mfa") + _tdnn_keys("asp.tdnn")
    keys += ["asp.conv.conv.weight", "asp.conv.conv.bias"]
    keys += [f"asp_bn.norm.{s}" for s in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
    keys += ["fc.conv.weight", "fc.conv.bias"]
    return keys


Index = tuple[torch.Tensor, torch.Tensor]


def reflect_index(frames: torch.Tensor, t: int, kernel: int, dilation: int) -> Index:
    """Gather indices for a "same" reflect-padded im2col of each utterance at its own length.

    Utterance ``b`` has ``frames[b]`` valid frames of the padded ``t``; output frame ``j``, tap ``k`` reads input
    frame ``j + k*dilation - pad`` reflected at 0 and at ``frames[b] - 1``, exactly what SpeechBrain's
    reflect padding does for that utterance alone. Frames past an utterance's end read clamped garbage that
    no valid frame depends on (their outputs are masked).
    """
    pad = dilation * (kernel - 1) // 2
    taps = torch.arange(kernel, device=frames.device) * dilation - pad
    j = (torch.arange(t, device=frames.device)[:, None] + taps[None, :]).reshape(1, -1)
    n = frames[:, None]
    j = torch.where(j < 0, -j, j)
    j = torch.where(j >= n, 2 * (n - 1) - j, j).clamp_(0, t - 1)
    return torch.arange(frames.shape[0], device=frames.device)[:, None], j


def _im2col(x: torch.Tensor, kernel: int, index: Index | None) -> torch.Tensor:
    """``[B, T, C]`` -> ``[B, T, kernel*C]`` (tap-major, matching the reshaped conv weight)."""
    if index is None:
        return x
    b, t, c = x.shape
    return x[index].reshape(b, t, kernel * c)


def _flush_denormals(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Zero the subnormal floats of the checkpoint (|w| < 1.2e-38: dead channels' weights).

    x86 handles subnormals in microcode: a GEMM touching them runs several times slower (measured 3x for the
    whole network on one core). Setting them to zero changes no output beyond ~1e-38.
    """
    tiny = torch.finfo(torch.float32).tiny
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if v.is_floating_point():
            v = v.float()
            v = torch.where(v.abs() < tiny, torch.zeros_like(v), v)
        out[k] = v
    return out


class _Tdnn(nn.Module):
    """conv -> ReLU -> BatchNorm (SpeechBrain's TDNNBlock), folded for inference."""

    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, state: Mapping[str, torch.Tensor], prefix: str, dilation: int = 1) -> None:
        super().__init__()
        w = state[f"{prefix}.conv.conv.weight"].float()  # [O, C, k]
        b = state[f"{prefix}.conv.conv.bias"].float()
        n = f"{prefix}.norm.norm."
        scale = state[n + "weight"].float() / torch.sqrt(state[n + "running_var"].float() + BN_EPS)
        shift = state[n + "bias"].float() - state[n + "running_mean"].float() * scale
        self.kernel = int(w.shape[2])
        self.dilation = dilation
        weight = w.permute(0, 2, 1).reshape(w.shape[0], -1)  # matches _im2col's channel order
        self.folded = bool(torch.all(scale > 0))
        if self.folded:  # s * relu(z) == relu(s * z) for s > 0
            weight = weight * scale[:, None]
            b = b * scale
        self.weight = nn.Parameter(weight.contiguous(), requires_grad=False)
        self.bias = nn.Parameter(b.contiguous(), requires_grad=False)
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)
        self.linear: Linear | None = None  # replaced by an int8 kernel when quantised

    def forward(self, x: torch.Tensor, index: Index | None = None) -> torch.Tensor:
        x = _im2col(x, self.kernel, index)
        z = self.linear(x) if self.linear is not None else F.linear(x, self.weight, self.bias)
        z = torch.relu_(z)
        if not self.folded:
            z = z * self.scale
        return z.add_(self.shift)


class _SERes2Net(nn.Module):
    def __init__(self, state: Mapping[str, torch.Tensor], prefix: str, dilation: int) -> None:
        super().__init__()
        self.tdnn1 = _Tdnn(state, f"{prefix}.tdnn1")
        self.res2 = nn.ModuleList(
            [_Tdnn(state, f"{prefix}.res2net_block.blocks.{i}", dilation) for i in range(SCALE - 1)]
        )
        self.tdnn2 = _Tdnn(state, f"{prefix}.tdnn2")
        se = f"{prefix}.se_block."
        self.se1_w = nn.Parameter(state[se + "conv1.conv.weight"].float()[:, :, 0].contiguous(), requires_grad=False)
        self.se1_b = nn.Parameter(state[se + "conv1.conv.bias"].float(), requires_grad=False)
        self.se2_w = nn.Parameter(state[se + "conv2.conv.weight"].float()[:, :, 0].contiguous(), requires_grad=False)
        self.se2_b = nn.Parameter(state[se + "conv2.conv.bias"].float(), requires_grad=False)

    def forward(self, x: torch.Tensor, frame_w: torch.Tensor, index: Index) -> torch.Tensor:
        residual = x
        x = self.tdnn1(x)
        chunks = x.split(x.shape[-1] // SCALE, dim=-1)
        ys = [chunks[0]]
        y = self.res2[0](chunks[1], index)
        ys.append(y)
        for i in range(2, SCALE):
            y = self.res2[i - 1](chunks[i] + y, index)
            ys.append(y)
        x = self.tdnn2(torch.cat(ys, dim=-1))
        s = torch.bmm(frame_w, x).squeeze(1)  # masked mean over time, [B, C]
        s = torch.relu_(F.linear(s, self.se1_w, self.se1_b))
        s = torch.sigmoid_(F.linear(s, self.se2_w, self.se2_b))
        return torch.addcmul(residual, x, s.unsqueeze(1))


def _weighted_stats(x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std over time of ``x [B,T,C]`` with weights ``w [B,1,T]`` summing to 1 (SpeechBrain's formula)."""
    mean = torch.bmm(w, x)  # [B, 1, C]
    var = torch.bmm(w, (x - mean).square_())
    return mean.squeeze(1), torch.sqrt(var.squeeze(1).clamp_(min=STAT_EPS))


class FusedEcapa(nn.Module):
    """ECAPA-TDNN (channels [1024]*4 + [3072], attention 128, 192-d) for ``[B, T, 80]`` features."""

    def __init__(self, state: Mapping[str, torch.Tensor]) -> None:
        super().__init__()
        missing = [k for k in expected_state_keys() if k not in state]
        unexpected = sorted(set(state) - set(expected_state_keys()))
        if missing or unexpected:
            raise ModelError(
                f"checkpoint does not match ECAPA-TDNN (spkrec-ecapa-voxceleb): missing keys {missing[:5]}, "
                f"unexpected keys {unexpected[:5]}"
            )
        self.block0 = _Tdnn(state, "blocks.0")
        state = _flush_denormals(state)
        blocks = [_SERes2Net(state, f"blocks.{b}", d) for b, d in zip((1, 2, 3), DILATIONS, strict=True)]
        self.blocks = nn.ModuleList(blocks)
        self.mfa = _Tdnn(state, "mfa")
        # attention TDNN: 9216 -> 128 on [x, mean, std]; split the weight into its three 3072-wide parts
        self.att = _Tdnn(state, "asp.tdnn")
        w = self.att.weight.data
        self.att.weight = nn.Parameter(w[:, :MFA_CHANNELS].contiguous(), requires_grad=False)
        self.att_ctx_w = nn.Parameter(w[:, MFA_CHANNELS:].contiguous(), requires_grad=False)  # [128, 6144]
        att_bias = self.att.bias.data.clone()
        self.att.bias = nn.Parameter(torch.zeros_like(att_bias), requires_grad=False)
        self.att_ctx_b = nn.Parameter(att_bias, requires_grad=False)
        self.att_conv_w = nn.Parameter(state["asp.conv.conv.weight"].float()[:, :, 0].contiguous(), requires_grad=False)
        self.att_conv_b = nn.Parameter(state["asp.conv.conv.bias"].float(), requires_grad=False)
        self.att_conv: Linear | None = None
        # asp_bn (affine on pooled stats) folded exactly into fc
        n = "asp_bn.norm."
        s = state[n + "weight"].float() / torch.sqrt(state[n + "running_var"].float() + BN_EPS)
        t = state[n + "bias"].float() - state[n + "running_mean"].float() * s
        fc_w = state["fc.conv.weight"].float()[:, :, 0]
        self.fc_w = nn.Parameter((fc_w * s[None, :]).contiguous(), requires_grad=False)
        self.fc_b = nn.Parameter(state["fc.conv.bias"].float() + fc_w @ t, requires_grad=False)
        # graph export/compilation: no data-dependent branch (the mask bias is added even when it is all zeros)
        self.always_mask = False

    def forward(self, feats: torch.Tensor, frames: torch.Tensor | None = None) -> torch.Tensor:
        """``feats [B, T, 80]`` (normalised Fbank), valid ``frames [B]`` (int) -> raw embeddings ``[B, 192]``.

        Each utterance is computed as if alone (its own reflect padding and masked statistics), so a padded
        batch gives the embeddings of its utterances one by one.
        """
        b, t, _ = feats.shape
        if frames is None:
            frames = torch.full((b,), t, dtype=torch.long, device=feats.device)
        frames = frames.to(device=feats.device, dtype=torch.long)
        mask = (torch.arange(t, device=feats.device)[None, :] < frames[:, None]).to(feats.dtype).unsqueeze(1)
        frame_w = mask / mask.sum(dim=2, keepdim=True)  # [B, 1, T], rows sum to 1

        x = self.block0(feats, reflect_index(frames, t, self.block0.kernel, self.block0.dilation))
        outs = []
        for block, dilation in zip(self.blocks, DILATIONS, strict=True):
            x = block(x, frame_w, reflect_index(frames, t, 3, dilation))
            outs.append(x)
        x = self.mfa(torch.cat(outs, dim=-1))  # [B, T, 3072]

        mean, std = _weighted_stats(x, frame_w)
        ctx = F.linear(torch.cat([mean, std], dim=-1), self.att_ctx_w, self.att_ctx_b)  # [B, 128]
        h = self.att.linear(x) if self.att.linear is not None else F.linear(x, self.att.weight)
        h = torch.relu_(h.add_(ctx.unsqueeze(1)))
        if not self.att.folded:
            h = h * self.att.scale
        h = torch.tanh_(h.add_(self.att.shift))
        logits = self.att_conv(h) if self.att_conv is not None else F.linear(h, self.att_conv_w, self.att_conv_b)
        if self.always_mask or bool((frames < t).any()):  # padded frames: no attention ([B, T, 1] bias)
            logits = logits.add_(torch.log(mask.transpose(1, 2)))
        attn = torch.softmax(logits, dim=1)  # [B, T, C]
        ax = attn.mul_(x)  # attn is not needed any more: reuse its memory
        mean = ax.sum(dim=1)
        ex2 = ax.mul_(x).sum(dim=1)  # E[x^2] under the attention weights
        std = torch.sqrt((ex2 - mean.square()).clamp_(min=STAT_EPS))
        return F.linear(torch.cat([mean, std], dim=-1), self.fc_w, self.fc_b)

    def gemm_layers(self) -> dict[str, _Tdnn]:
        """Every conv/TDNN layer computed as one GEMM, by module name (each may be given an int8 ``linear``)."""
        return {name: m for name, m in self.named_modules() if isinstance(m, _Tdnn)}
