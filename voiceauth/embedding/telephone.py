"""The telephone-channel adaptation of ECAPA: shipped tensors that replace the first two blocks for telephone audio.

``models/telephone/adapter.npz`` holds ``blocks.0.*`` and ``blocks.1.*`` of SpeechBrain's ECAPA after the
teacher-student fine-tuning of :mod:`voiceauth.embedding.adapt` (trained on the cohort half of the LibriSpeech
readers through G.711, never on evaluation readers); ``MANIFEST.json`` pins it by sha256 with its provenance.
Engines run the adapted network on telephone-band audio (``telephone=True``, or any input at <= 8 kHz) and the
released one on full-band audio. Measured (``benchmarks/accuracy_scoring.py``): see ``benchmarks/results/accuracy.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

import models as _models_pkg
from models.fetch import sha256_file
from voiceauth.errors import ModelChecksumMismatch, ModelError, ModelFileMissing

__all__ = ["ADAPTED_PREFIXES", "ADAPTER_DIR", "adapted_state", "adapter_digest", "load_adapter", "write_adapter"]

ADAPTER_DIR = Path(_models_pkg.__file__).resolve().parent / "telephone"  # package data of `models`
ADAPTED_PREFIXES = ("blocks.0.", "blocks.1.")
_FILE = "adapter.npz"
_MANIFEST = "MANIFEST.json"


def write_adapter(out: Path, tensors: dict[str, torch.Tensor], provenance: dict[str, Any]) -> None:
    """Write ``adapter.npz`` (float16) and the ``MANIFEST.json`` that pins it."""
    out.mkdir(parents=True, exist_ok=True)
    arrays = {k: v.detach().cpu().to(torch.float16).numpy() for k, v in sorted(tensors.items())}
    np.savez_compressed(out / _FILE, **arrays)  # type: ignore[arg-type]
    manifest = {"files": {_FILE: {"sha256": sha256_file(out / _FILE)}}, "provenance": provenance}
    (out / _MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def adapter_digest(folder: Path = ADAPTER_DIR) -> str:
    """sha256 of the adapter file as pinned by the manifest (checked), e.g. for cache keys."""
    manifest_path = folder / _MANIFEST
    path = folder / _FILE
    for p in (manifest_path, path):
        if not p.is_file():
            raise ModelFileMissing(f"{p} is missing; rebuild it with `python -m voiceauth.embedding.adapt`")
    manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8"))
    expected = manifest.get("files", {}).get(_FILE, {}).get("sha256")
    actual = sha256_file(path)
    if actual != expected:
        raise ModelChecksumMismatch(f"{path} has sha256 {actual}, {manifest_path} expects {expected}")
    return actual


def load_adapter(folder: Path = ADAPTER_DIR) -> dict[str, torch.Tensor]:
    """The verified adapter tensors (float32)."""
    adapter_digest(folder)
    with np.load(folder / _FILE, allow_pickle=False) as z:
        return {k: torch.from_numpy(z[k].astype(np.float32)) for k in z.files}


def adapted_state(base: dict[str, Any], adapter: dict[str, torch.Tensor]) -> dict[str, Any]:
    """A copy of the ECAPA state dict ``base`` with the adapter's tensors in place (same names and shapes)."""
    out = dict(base)
    for name, value in adapter.items():
        if not name.startswith(ADAPTED_PREFIXES) or name not in base:
            raise ModelError(f"adapter tensor {name!r} is not one of ECAPA's first two blocks")
        if tuple(base[name].shape) != tuple(value.shape):
            raise ModelError(
                f"adapter tensor {name!r} has shape {tuple(value.shape)}, ECAPA's is {tuple(base[name].shape)}"
            )
        out[name] = value.to(base[name].dtype)
    return out
