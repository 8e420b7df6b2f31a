"""A small LFB-LCNN for 8 kHz telephone speech: log linear filterbank (0-4 kHz) into a light CNN with max-feature-map.

Front end (in the network, so training and serving compute the same features): 8 kHz waveform -> pre-emphasis ->
STFT (25 ms Hann window, 10 ms hop, 256 points) -> power -> 48 linear triangular filters over 0-4 kHz -> log ->
mean normalisation over time (removes a fixed channel colouration, e.g. the band-pass or a handset).

Network: the LCNN of the ASVspoof LFCC-LCNN baseline (Lavrentyeva et al., Interspeech 2019; Wang & Yamagishi,
Interspeech 2021) at a fraction of its width: five convolution stages with max-feature-map (MFM) activations and
batch norm, 2x2 max-pooling, then mean+std pooling over time and two linear layers. Output: one spoof logit per
utterance (higher = more likely spoof); variable length, so a whole call's speech is scored in one pass.
~52 k parameters, ~1.5 ms of one CPU core per second of speech.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["LCNN", "LCNNConfig", "LogLFB"]

SAMPLE_RATE = 8_000


@dataclass(frozen=True)
class LCNNConfig:
    n_fft: int = 256
    win: int = 200
    hop: int = 80
    n_filters: int = 48
    channels: tuple[int, ...] = (12, 16, 24, 32)
    hidden: int = 64
    dropout: float = 0.3

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LCNNConfig:
        fields = dict(d)
        fields["channels"] = tuple(int(c) for c in fields.get("channels", cls.channels))
        return cls(**fields)


def _linear_filterbank(n_fft: int, n_filters: int, rate: int) -> torch.Tensor:
    bins = n_fft // 2 + 1
    freqs = torch.linspace(0.0, rate / 2.0, bins)
    edges = torch.linspace(0.0, rate / 2.0, n_filters + 2)
    fb = torch.zeros(n_filters, bins)
    for i in range(n_filters):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        fb[i] = torch.clamp(torch.minimum(up, down), min=0.0)
    return fb


class LogLFB(nn.Module):
    """(batch, samples) 8 kHz waveform -> (batch, 1, n_filters, frames) mean-normalised log linear filterbank."""

    window: torch.Tensor
    fb: torch.Tensor

    def __init__(self, cfg: LCNNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("window", torch.hann_window(cfg.win), persistent=False)
        self.register_buffer("fb", _linear_filterbank(cfg.n_fft, cfg.n_filters, SAMPLE_RATE), persistent=False)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> (batch, n_filters, frames) log filterbank, not normalised."""
        x = torch.cat([x[:, :1], x[:, 1:] - 0.97 * x[:, :-1]], dim=1)
        spec = torch.stft(x, self.cfg.n_fft, self.cfg.hop, self.cfg.win, self.window, center=True, return_complex=True)
        power = spec.real.square() + spec.imag.square()  # (batch, bins, frames)
        return torch.log(torch.matmul(self.fb, power) + 1e-6)

    @staticmethod
    def normalise(lfb: torch.Tensor) -> torch.Tensor:
        """(batch, n_filters, frames) -> (batch, 1, n_filters, frames), mean-normalised over time."""
        return (lfb - lfb.mean(dim=2, keepdim=True)).unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalise(self.raw(x))


class _MFMConv(nn.Module):
    """Convolution to 2c channels, then max-feature-map down to c."""

    def __init__(self, c_in: int, c_out: int, k: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, 2 * c_out, k, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.conv(x).chunk(2, dim=1)
        return torch.maximum(a, b)


class LCNN(nn.Module):
    """8 kHz waveform (batch, samples) -> spoof logit (batch,)."""

    def __init__(self, cfg: LCNNConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or LCNNConfig()
        c = self.cfg.channels
        self.frontend = LogLFB(self.cfg)
        self.body = nn.Sequential(
            _MFMConv(1, c[0], 5),
            nn.MaxPool2d(2),
            _MFMConv(c[0], c[0], 1),
            nn.BatchNorm2d(c[0]),
            _MFMConv(c[0], c[1], 3),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(c[1]),
            _MFMConv(c[1], c[1], 1),
            nn.BatchNorm2d(c[1]),
            _MFMConv(c[1], c[2], 3),
            nn.MaxPool2d(2),
            _MFMConv(c[2], c[2], 1),
            nn.BatchNorm2d(c[2]),
            _MFMConv(c[2], c[3], 3),
            nn.BatchNorm2d(c[3]),
        )
        freq_out = self.cfg.n_filters // 8
        self.head = nn.Sequential(
            nn.Dropout(self.cfg.dropout),
            nn.Linear(2 * c[3] * freq_out, self.cfg.hidden),
            nn.LeakyReLU(0.1),
            nn.Linear(self.cfg.hidden, 1),
        )

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        return self.frontend(wave)

    def forward_features(self, feats: torch.Tensor) -> torch.Tensor:
        h = self.body(feats)  # (batch, c, f, t)
        h = h.flatten(1, 2)  # (batch, c * f, t)
        stats = torch.cat([h.mean(dim=2), h.std(dim=2, unbiased=False)], dim=1)
        out: torch.Tensor = self.head(stats).squeeze(1)
        return out

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.forward_features(self.features(wave))


def min_samples(cfg: LCNNConfig) -> int:
    """Shortest input the network accepts (8 frames after three 2x poolings): 0.1 s."""
    return int(math.ceil(8 * cfg.hop))
