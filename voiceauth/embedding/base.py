"""The embedding engine interface every backend (and the test fake) implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["EMBEDDING_DIM", "TELEPHONE_MAX_RATE", "EmbeddingEngine", "FloatArray", "cosine", "is_telephone"]

EMBEDDING_DIM = 192
FloatArray = npt.NDArray[np.float32]
TELEPHONE_MAX_RATE = 8000  # audio at this rate or below can only be telephone band


def is_telephone(telephone: bool, sample_rate: int) -> bool:
    """Whether audio is telephone band: said so by the caller, or given at <= 8 kHz."""
    return telephone or 0 < sample_rate <= TELEPHONE_MAX_RATE


@runtime_checkable
class EmbeddingEngine(Protocol):
    """Turns mono waveforms into L2-normalised float32 speaker embeddings.

    ``telephone=True`` says the audio is telephone band (came through an 8 kHz channel, whatever rate it is given
    at; audio at <= 8 kHz always is): engines with a telephone-adapted network use it for such audio.
    """

    dim: int
    precision: str
    device: str

    def embed(self, wav: FloatArray, sample_rate: int, *, telephone: bool = False) -> FloatArray:
        """One mono float waveform at ``sample_rate`` -> float32[dim], unit length."""
        ...

    def embed_batch(self, wavs: Sequence[FloatArray], sample_rate: int, *, telephone: bool = False) -> FloatArray:
        """Several mono waveforms (any lengths) at one rate, all in one band -> float32[n, dim], unit rows."""
        ...


def cosine(a: FloatArray, b: FloatArray) -> float:
    """Cosine similarity of two vectors (embeddings need not be normalised)."""
    na = float(np.linalg.norm(a))
    nb = float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))
