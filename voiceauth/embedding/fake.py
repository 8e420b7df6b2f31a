"""A fast, deterministic stand-in engine for tests that only need *some* embedding.

It is not a speaker model: it summarises the log spectrum of the waveform into 192 numbers. Tests that prove
speaker behaviour use the real ECAPA engine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from voiceauth.embedding.base import EMBEDDING_DIM, FloatArray

__all__ = ["FakeEngine"]


class FakeEngine:
    dim = EMBEDDING_DIM
    precision = "fp32"
    device = "cpu"

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, wav: FloatArray, sample_rate: int, *, telephone: bool = False) -> FloatArray:
        self.calls += 1
        x = np.asarray(wav, dtype=np.float64)
        n_fft = 512
        if x.size < n_fft:
            x = np.pad(x, (0, n_fft - x.size))
        frames = x[: (x.size // n_fft) * n_fft].reshape(-1, n_fft)
        spec = np.log1p(np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)).mean(axis=0))
        # resample the spectrum to dim bins, centre, normalise
        vec = np.interp(np.linspace(0, spec.size - 1, self.dim), np.arange(spec.size), spec)
        vec = vec - vec.mean()
        norm = np.linalg.norm(vec)
        out = vec / norm if norm > 0 else np.full(self.dim, 1.0 / np.sqrt(self.dim))
        return out.astype(np.float32)

    def embed_batch(self, wavs: Sequence[FloatArray], sample_rate: int, *, telephone: bool = False) -> FloatArray:
        return np.stack([self.embed(w, sample_rate, telephone=telephone) for w in wavs]).astype(np.float32)
