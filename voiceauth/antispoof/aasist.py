"""AASIST: audio anti-spoofing with integrated spectro-temporal graph attention networks.

Jung et al., "AASIST: Audio Anti-Spoofing using Integrated Spectro-Temporal Graph Attention Networks", ICASSP 2022
(NAVER Clova, MIT licence). Written here to reproduce the official ASVspoof 2019 LA release: module and parameter
names and shapes match its state dict exactly (``load_state_dict(strict=True)``), and the forward pass follows the
released code, quirks included:

* the residual blocks compute ``bn1`` but feed the *un-normalised* input to ``conv1`` (so ``bn1`` is dead weight);
* the master nodes of the heterogeneous layers are the raw (1, 1, d) parameters, broadcast over the batch;
* the sinc front end is fixed (mel-spaced band-pass filters, no learnt parameters).

Input: raw 16 kHz waveform, float in [-1, 1], shape (batch, samples); trained on 64,600 samples (~4 s). Output:
two logits per input, index 0 = spoof, index 1 = bona fide (the training labels of the release).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["AASIST", "AasistConfig", "BONAFIDE_INDEX", "SPOOF_INDEX", "sinc_filterbank"]

SPOOF_INDEX = 0
BONAFIDE_INDEX = 1


@dataclass(frozen=True)
class AasistConfig:
    """Hyper-parameters of the released AASIST (``config/AASIST.conf``)."""

    nb_samp: int = 64_600
    first_conv: int = 128
    sinc_filters: int = 70
    filts: tuple[tuple[int, int], ...] = ((1, 32), (32, 32), (32, 64), (64, 64), (64, 64), (64, 64))
    gat_dims: tuple[int, int] = (64, 32)
    pool_ratios: tuple[float, float, float, float] = (0.5, 0.7, 0.5, 0.5)
    temperatures: tuple[float, float, float, float] = (2.0, 2.0, 100.0, 100.0)
    sample_rate: int = 16_000


def _to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def sinc_filterbank(n_filters: int, kernel_size: int, sample_rate: int) -> Tensor:
    """The fixed mel-spaced band-pass sinc filters (Hamming windowed), shape (n_filters, odd kernel)."""
    if kernel_size % 2 == 0:
        kernel_size += 1
    nfft = 512
    freqs = int(sample_rate / 2) * np.linspace(0.0, 1.0, nfft // 2 + 1)
    mel = _to_mel(freqs)
    edges = _to_hz(np.linspace(mel.min(), mel.max(), n_filters + 1))
    support = np.arange(-(kernel_size - 1) / 2, (kernel_size - 1) / 2 + 1, dtype=np.float32)
    window = np.hamming(kernel_size)
    bank = np.zeros((n_filters, kernel_size), dtype=np.float64)
    for i in range(n_filters):
        f_lo, f_hi = edges[i], edges[i + 1]
        high = (2 * f_hi / sample_rate) * np.sinc(2 * f_hi * support / sample_rate)
        low = (2 * f_lo / sample_rate) * np.sinc(2 * f_lo * support / sample_rate)
        bank[i] = window * (high - low)
    return torch.from_numpy(bank.astype(np.float32))


class _SincFrontEnd(nn.Module):
    """Fixed sinc band-pass convolution (no parameters; the filters are a non-persistent buffer)."""

    def __init__(self, n_filters: int, kernel_size: int, sample_rate: int) -> None:
        super().__init__()
        self.register_buffer("filters", sinc_filterbank(n_filters, kernel_size, sample_rate).unsqueeze(1), False)

    def forward(self, x: Tensor) -> Tensor:  # (b, 1, n) -> (b, filters, n - k + 1)
        return F.conv1d(x, self.get_buffer("filters"))


class _ResidualBlock(nn.Module):
    def __init__(self, channels: tuple[int, int], first: bool = False) -> None:
        super().__init__()
        c_in, c_out = channels
        self.first = first
        if not first:
            self.bn1 = nn.BatchNorm2d(c_in)  # present in the release; its output is unused (see module doc)
        self.conv1 = nn.Conv2d(c_in, c_out, kernel_size=(2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size=(2, 3), padding=(0, 1))
        self.downsample = c_in != c_out
        if self.downsample:
            self.conv_downsample = nn.Conv2d(c_in, c_out, kernel_size=(1, 3), padding=(0, 1))
        self.pool = nn.MaxPool2d((1, 3))

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(x)  # the release applies conv1 to x, not to selu(bn1(x))
        out = self.conv2(F.selu(self.bn2(out)))
        identity = self.conv_downsample(x) if self.downsample else x
        return self.pool(out + identity)


def _pairwise(x: Tensor) -> Tensor:
    """(b, n, d) -> (b, n, n, d): element-wise products of every pair of nodes."""
    return x.unsqueeze(2) * x.unsqueeze(1)


def _batch_norm_nodes(bn: nn.BatchNorm1d, x: Tensor) -> Tensor:
    shape = x.shape
    out: Tensor = bn(x.reshape(-1, shape[-1]))
    return out.reshape(shape)


class _GraphAttention(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, temperature: float) -> None:
        super().__init__()
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = nn.Parameter(torch.empty(out_dim, 1))
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.temp = temperature
        nn.init.xavier_normal_(self.att_weight)

    def forward(self, x: Tensor) -> Tensor:
        att = torch.tanh(self.att_proj(_pairwise(x))) @ self.att_weight  # (b, n, n, 1)
        att = F.softmax(att / self.temp, dim=-2).squeeze(-1)
        out = self.proj_with_att(att @ x) + self.proj_without_att(x)
        return F.selu(_batch_norm_nodes(self.bn, out))


class _HeteroGraphAttention(nn.Module):
    """Heterogeneous (temporal + spectral) graph attention with a master node."""

    def __init__(self, in_dim: int, out_dim: int, temperature: float) -> None:
        super().__init__()
        self.proj_type1 = nn.Linear(in_dim, in_dim)
        self.proj_type2 = nn.Linear(in_dim, in_dim)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_projM = nn.Linear(in_dim, out_dim)
        self.att_weight11 = nn.Parameter(torch.empty(out_dim, 1))
        self.att_weight22 = nn.Parameter(torch.empty(out_dim, 1))
        self.att_weight12 = nn.Parameter(torch.empty(out_dim, 1))
        self.att_weightM = nn.Parameter(torch.empty(out_dim, 1))
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.proj_with_attM = nn.Linear(in_dim, out_dim)
        self.proj_without_attM = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.temp = temperature
        for p in (self.att_weight11, self.att_weight22, self.att_weight12, self.att_weightM):
            nn.init.xavier_normal_(p)

    def forward(self, x1: Tensor, x2: Tensor, master: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n1, n2 = x1.shape[1], x2.shape[1]
        x = torch.cat([self.proj_type1(x1), self.proj_type2(x2)], dim=1)

        # master node update: attention of the master over all nodes
        att_m = torch.tanh(self.att_projM(x * master)) @ self.att_weightM  # (b, n, 1)
        att_m = F.softmax(att_m / self.temp, dim=-2)
        master = self.proj_with_attM(att_m.transpose(1, 2) @ x) + self.proj_without_attM(master)

        # node update: block-wise attention weights (11, 22, and 12 for both cross blocks)
        hidden = torch.tanh(self.att_proj(_pairwise(x)))  # (b, n, n, out)
        att = torch.empty(hidden.shape[:-1] + (1,), dtype=hidden.dtype, device=hidden.device)
        att[:, :n1, :n1] = hidden[:, :n1, :n1] @ self.att_weight11
        att[:, n1:, n1:] = hidden[:, n1:, n1:] @ self.att_weight22
        att[:, :n1, n1:] = hidden[:, :n1, n1:] @ self.att_weight12
        att[:, n1:, :n1] = hidden[:, n1:, :n1] @ self.att_weight12
        att = F.softmax(att / self.temp, dim=-2).squeeze(-1)
        out = self.proj_with_att(att @ x) + self.proj_without_att(x)
        out = F.selu(_batch_norm_nodes(self.bn, out))
        return out[:, :n1], out[:, n1 : n1 + n2], master


class _GraphPool(nn.Module):
    """Keep the top ``ratio`` of nodes by a learnt sigmoid score, scaled by that score."""

    def __init__(self, ratio: float, in_dim: int) -> None:
        super().__init__()
        self.ratio = ratio
        self.proj = nn.Linear(in_dim, 1)

    def forward(self, h: Tensor) -> Tensor:
        scores = torch.sigmoid(self.proj(h))  # (b, n, 1)
        keep = max(int(h.shape[1] * self.ratio), 1)
        _, idx = torch.topk(scores, keep, dim=1)
        return torch.gather(h * scores, 1, idx.expand(-1, -1, h.shape[-1]))


class AASIST(nn.Module):
    """The AASIST network; parameter names match the official ``AASIST.pth`` release."""

    def __init__(self, config: AasistConfig | None = None) -> None:
        super().__init__()
        cfg = config or AasistConfig()
        self.config = cfg
        g0, g1 = cfg.gat_dims
        t = cfg.temperatures
        r = cfg.pool_ratios
        self.conv_time = _SincFrontEnd(cfg.sinc_filters, cfg.first_conv, cfg.sample_rate)
        self.first_bn = nn.BatchNorm2d(1)
        self.encoder = nn.Sequential(
            *(nn.Sequential(_ResidualBlock(ch, first=i == 0)) for i, ch in enumerate(cfg.filts))
        )
        spectral_nodes = _spectral_nodes(cfg.sinc_filters)
        c_last = cfg.filts[-1][-1]
        self.pos_S = nn.Parameter(torch.randn(1, spectral_nodes, c_last))
        self.master1 = nn.Parameter(torch.randn(1, 1, g0))
        self.master2 = nn.Parameter(torch.randn(1, 1, g0))
        self.GAT_layer_S = _GraphAttention(c_last, g0, t[0])
        self.GAT_layer_T = _GraphAttention(c_last, g0, t[1])
        self.HtrgGAT_layer_ST11 = _HeteroGraphAttention(g0, g1, t[2])
        self.HtrgGAT_layer_ST12 = _HeteroGraphAttention(g1, g1, t[2])
        self.HtrgGAT_layer_ST21 = _HeteroGraphAttention(g0, g1, t[2])
        self.HtrgGAT_layer_ST22 = _HeteroGraphAttention(g1, g1, t[2])
        self.pool_S = _GraphPool(r[0], g0)
        self.pool_T = _GraphPool(r[1], g0)
        self.pool_hS1 = _GraphPool(r[2], g1)
        self.pool_hT1 = _GraphPool(r[2], g1)
        self.pool_hS2 = _GraphPool(r[2], g1)
        self.pool_hT2 = _GraphPool(r[2], g1)
        self.out_layer = nn.Linear(5 * g1, 2)

    def _branch(
        self,
        first: _HeteroGraphAttention,
        second: _HeteroGraphAttention,
        pool_s: _GraphPool,
        pool_t: _GraphPool,
        out_t: Tensor,
        out_s: Tensor,
        master: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        t1, s1, m1 = first(out_t, out_s, master)
        s1, t1 = pool_s(s1), pool_t(t1)
        t_aug, s_aug, m_aug = second(t1, s1, m1)
        return t1 + t_aug, s1 + s_aug, m1 + m_aug

    def forward(self, wave: Tensor) -> Tensor:
        """(batch, samples) float waveform at 16 kHz -> (batch, 2) logits [spoof, bona fide]."""
        x = self.conv_time(wave.unsqueeze(1)).unsqueeze(1)  # (b, 1, filters, time)
        x = F.selu(self.first_bn(F.max_pool2d(x.abs(), (3, 3))))
        e = self.encoder(x).abs()  # (b, c, spectral, temporal)

        e_s = e.amax(dim=3).transpose(1, 2) + self.pos_S  # spectral nodes
        out_s = self.pool_S(self.GAT_layer_S(e_s))
        e_t = e.amax(dim=2).transpose(1, 2)  # temporal nodes
        out_t = self.pool_T(self.GAT_layer_T(e_t))

        t1, s1, m1 = self._branch(
            self.HtrgGAT_layer_ST11, self.HtrgGAT_layer_ST12, self.pool_hS1, self.pool_hT1, out_t, out_s, self.master1
        )
        t2, s2, m2 = self._branch(
            self.HtrgGAT_layer_ST21, self.HtrgGAT_layer_ST22, self.pool_hS2, self.pool_hT2, out_t, out_s, self.master2
        )
        out_t, out_s, master = torch.maximum(t1, t2), torch.maximum(s1, s2), torch.maximum(m1, m2)
        hidden = torch.cat(
            [
                out_t.abs().amax(dim=1),
                out_t.mean(dim=1),
                out_s.abs().amax(dim=1),
                out_s.mean(dim=1),
                master.squeeze(1).expand(out_t.shape[0], -1),
            ],
            dim=1,
        )
        logits: Tensor = self.out_layer(hidden)
        return logits


def _spectral_nodes(n_filters: int) -> int:
    """Spectral nodes after the front end's (3, 3) pooling: 70 filters -> 23."""
    return n_filters // 3
