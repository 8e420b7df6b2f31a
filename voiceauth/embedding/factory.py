"""Build the configured embedding engine from Settings (the edge where model files are located)."""

from __future__ import annotations

from models.fetch import ensure_model
from voiceauth.config import Settings
from voiceauth.embedding.ecapa import EcapaEngine

__all__ = ["create_engine"]


def create_engine(settings: Settings, fetch: bool = True) -> EcapaEngine:
    """Locate (and, if allowed, fetch) the verified model files, then load the engine."""
    model_dir = ensure_model(settings, fetch=fetch)
    return EcapaEngine(
        model_dir,
        precision=settings.precision,
        device=settings.device,
        num_threads=settings.num_threads,
        verify=False,  # ensure_model has just verified every file
    )
