"""Build the configured embedding engine from Settings (the edge where model files and recordings are located)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from models.fetch import ensure_model, sha256_file
from voiceauth.config import Settings
from voiceauth.embedding import autoselect
from voiceauth.embedding.backends import create_backend, resolve_backend
from voiceauth.embedding.base import EmbeddingEngine, FloatArray
from voiceauth.embedding.precision import cpu_has_bf16, resolve_device
from voiceauth.embedding.telephone import ADAPTER_DIR

__all__ = ["SAMPLES_DIR", "calibration_speech", "create_engine", "describe_selection", "selection_parts"]

log = logging.getLogger(__name__)

#: The bundled real recordings (FSDD digit strings, 8 kHz): the calibration's speech
SAMPLES_DIR = Path(__file__).resolve().parents[2] / "audio_samples"
CALIBRATION_RATE = 8000
CALIBRATION_S = 3.0


def calibration_speech(samples: Path = SAMPLES_DIR) -> list[FloatArray]:
    """The first 3 s of one bundled recording per speaker, through G.711 mu-law as on a call ([] if absent)."""
    import soundfile as sf

    from voiceauth.audio.codecs import mulaw_decode, mulaw_encode

    out: list[FloatArray] = []
    for path in sorted(samples.glob("*_a.wav")):
        wav, rate = sf.read(str(path), dtype="float32", always_2d=False)
        if rate != CALIBRATION_RATE or wav.ndim != 1:
            continue
        piece = wav[: int(CALIBRATION_S * rate)]
        out.append(mulaw_decode(mulaw_encode(piece)).astype(np.float32))
    return out


def _cache_dir(model_dir: Path) -> Path:
    return model_dir.parent / f"{model_dir.name}-calibration"


def selection_parts(settings: Settings, model_dir: Path) -> dict[str, object]:
    """The calibration key's parts for this configuration on this machine."""
    threads = settings.num_threads or torch.get_num_threads()
    digest = sha256_file(model_dir / "embedding_model.ckpt")[:16]
    parts = autoselect.key_parts(digest, threads, autoselect.available_candidates(cpu_has_bf16()))
    parts["telephone_adapter"] = bool(settings.telephone_adapter)
    return parts


def create_engine(settings: Settings, fetch: bool = True) -> EmbeddingEngine:
    """Locate (and, if allowed, fetch) the verified model files, then load the configured backend.

    ``settings.backend`` picks the implementation. ``auto`` with ``precision`` auto on a CPU: the fastest
    backend that passes the accuracy guard, measured at the first start on this machine and cached
    (:mod:`voiceauth.embedding.autoselect`; ``backend_calibration=false`` or no bundled recordings: the static
    choice of :func:`voiceauth.embedding.backends.resolve_backend`). ``settings.precision`` applies to the
    ``speechbrain`` and ``fused`` backends.
    """
    model_dir = ensure_model(settings, fetch=fetch)
    tel = ADAPTER_DIR if settings.telephone_adapter else None

    def build(name: str) -> EmbeddingEngine:
        backend, precision = name, str(settings.precision)
        if name in ("fused-bf16", "fused-fp32"):
            backend, precision = "fused", name.removeprefix("fused-")
        return create_backend(
            backend,
            model_dir,
            precision=precision,
            device=settings.device,
            num_threads=settings.num_threads,
            verify=False,  # ensure_model has just verified every file
            telephone_adapter=tel,
        )

    device = resolve_device(settings.device)
    measured = settings.backend == "auto" and settings.precision == "auto" and device == "cpu"
    speech = calibration_speech() if measured and settings.backend_calibration else []
    if not speech:
        static = resolve_backend(settings.backend, device)
        why = "configured" if settings.backend != "auto" else f"auto on {device} without calibration (static rule)"
        autoselect.note_static(static, why)
        return build(settings.backend)
    fallback = resolve_backend("auto", device)
    fallback_name = fallback if fallback != "fused" else ("fused-bf16" if cpu_has_bf16() else "fused-fp32")

    def reference() -> FloatArray:
        return build("fused-fp32").embed_batch(speech, CALIBRATION_RATE)

    selection, engine = autoselect.select(
        selection_parts(settings, model_dir),
        _cache_dir(model_dir),
        build,
        reference,
        speech,
        CALIBRATION_RATE,
        fallback=fallback_name,
    )
    log.info("embedding backend %s (%s): %s", selection.backend, selection.method, selection.reason)
    return engine if engine is not None else build(selection.backend)


def describe_selection(settings: Settings) -> dict[str, object]:
    """What ``create_engine(settings)`` runs, from the stored calibration, without loading any model."""
    model_dir = settings.model_dir or settings.model_cache_dir
    device = resolve_device(settings.device)
    static = resolve_backend(settings.backend, device)
    if settings.backend != "auto" or settings.precision != "auto" or device != "cpu":
        return {"backend": static, "method": "static", "reason": "configured backend / precision / device"}
    if not (model_dir / "embedding_model.ckpt").is_file():
        return {"backend": static, "method": "static", "reason": "model not fetched yet"}
    parts = selection_parts(settings, model_dir)
    path = autoselect.calibration_file(_cache_dir(model_dir), parts)
    cached = autoselect.read_cached(path, autoselect.calibration_key(parts))
    if cached is None:
        return {
            "backend": None,
            "method": "pending",
            "reason": f"measured at the next start (no calibration stored for this machine in {path.parent})",
            "static_fallback": static,
            "candidates": parts["candidates"],
        }
    return {**cached.as_dict(), "file": str(path)}
