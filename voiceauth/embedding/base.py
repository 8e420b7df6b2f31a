"""The embedding engine interface every backend (and the test fake) implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["EMBEDDING_DIM", "EmbeddingEngine", "FloatArray", "cosine"]

EMBEDDING_DIM = 192
FloatArray = npt.NDArray[np.float32]


@runtime_checkable
class EmbeddingEngine(Protocol):
    """Turns mono waveforms into L2-normalised float32 speaker embeddings."""

    dim: int
    precision: str
    device: str

    def embed(self, wav: FloatArray, sample_rate: int) -> FloatArray:
        """One mono float waveform at ``sample_rate`` -> float32[dim], unit length."""
        ...

    def embed_batch(self, wavs: Sequence[FloatArray], sample_rate: int) -> FloatArray:
        """Several mono waveforms (any lengths) at one rate -> float32[n, dim], unit rows."""
        ...


def cosine(a: FloatArray, b: FloatArray) -> float:
    """Cosine similarity of two vectors (embeddings need not be normalised)."""
    na = float(np.linalg.norm(a))
    nb = float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))
