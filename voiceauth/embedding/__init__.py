"""Speaker embedding engines."""

from __future__ import annotations

from voiceauth.embedding.base import EMBEDDING_DIM, EmbeddingEngine, FloatArray, cosine

__all__ = ["EMBEDDING_DIM", "EmbeddingEngine", "FloatArray", "cosine"]
