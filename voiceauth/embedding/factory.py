"""Build the configured embedding engine from Settings (the edge where model files are located)."""

from __future__ import annotations

from models.fetch import ensure_model
from voiceauth.config import Settings
from voiceauth.embedding.backends import create_backend
from voiceauth.embedding.base import EmbeddingEngine
from voiceauth.embedding.telephone import ADAPTER_DIR

__all__ = ["create_engine"]


def create_engine(settings: Settings, fetch: bool = True) -> EmbeddingEngine:
    """Locate (and, if allowed, fetch) the verified model files, then load the configured backend.

    ``settings.backend`` picks the implementation (``auto``: see
    :func:`voiceauth.embedding.backends.resolve_backend`); ``settings.precision`` applies to the
    ``speechbrain`` and ``fused`` backends.
    """
    model_dir = ensure_model(settings, fetch=fetch)
    return create_backend(
        settings.backend,
        model_dir,
        precision=settings.precision,
        device=settings.device,
        num_threads=settings.num_threads,
        verify=False,  # ensure_model has just verified every file
        telephone_adapter=ADAPTER_DIR if settings.telephone_adapter else None,
    )
