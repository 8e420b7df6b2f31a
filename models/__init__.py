"""Model registry, offline fetch and provenance for voiceauth's pretrained weights."""

from __future__ import annotations

from models.fetch import ensure_model, fetch_model, read_manifest, verify_dir
from models.registry import ECAPA, ModelSpec

__all__ = ["ECAPA", "ModelSpec", "ensure_model", "fetch_model", "read_manifest", "verify_dir"]
