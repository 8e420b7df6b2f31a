"""What the benchmarks measure: SpeechBrain's reference pipeline and every embedding backend, by name.

Every subject is a callable ``embed_batch(list of 8 kHz waveforms, rate) -> float32[n, 192]`` (unit rows), built
on the same verified model files. ``reference`` is SpeechBrain's own ``SpeakerRecognition.encode_batch`` (fp32,
eager) after torchaudio's resampling to 16 kHz: the pipeline a user of SpeechBrain would run.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF

from voiceauth.embedding.backends import FusedEngine, resolve_backend
from voiceauth.embedding.backends.fused import FusedEcapa
from voiceauth.embedding.backends.int8 import quantize_model
from voiceauth.embedding.backends.onnx import onnxruntime_available
from voiceauth.embedding.backends.openvino import openvino_available
from voiceauth.embedding.base import EmbeddingEngine, FloatArray
from voiceauth.embedding.ecapa import EcapaEngine
from voiceauth.embedding.precision import cpu_has_bf16

__all__ = ["REFERENCE", "Subject", "build_subject", "production_name", "subject_names"]

REFERENCE = "reference"
EmbedFn = Callable[[Sequence[FloatArray], int], FloatArray]


@dataclass
class Subject:
    name: str
    description: str
    embed_batch: EmbedFn
    engine: EmbeddingEngine | None = None


def subject_names(device: str, quick: bool = False) -> list[str]:
    """The subjects measured on ``device``; bf16/fp16 modes only where the hardware runs them natively or on CUDA."""
    if device == "cuda":
        names = ["speechbrain-fp32", "speechbrain-fp16", "fused-fp32", "fused-fp16"]
        if torch.cuda.is_bf16_supported():
            names += ["speechbrain-bf16", "fused-bf16"]
        return [REFERENCE, *names]
    names = ["speechbrain-fp32", "fused-fp32", "fused-int8"]
    if cpu_has_bf16() or not quick:  # bf16 without AMX / AVX512-BF16 is emulated: slower, shown once for the record
        names += ["speechbrain-bf16", "fused-bf16"]
    production = production_name(device)
    if onnxruntime_available() and (not quick or production == "onnx-int8"):
        names.append("onnx-int8")  # --quick measures it only where it is the production backend
    if openvino_available():
        names += [n for n in ("openvino-int8", "openvino-bf16") if not quick or production == n]
    if not cpu_has_bf16():
        names = [n for n in names if n != "openvino-bf16"]
    return [REFERENCE, *names]


def production_name(device: str) -> str:
    """The subject that ``create_engine(Settings())`` builds on this machine (backend ``auto``): the calibration
    stored for this machine and thread count (:mod:`voiceauth.embedding.autoselect`), else the static rule."""
    if device == "cpu":
        from voiceauth.config import Settings
        from voiceauth.embedding.factory import describe_selection

        measured = describe_selection(Settings(num_threads=torch.get_num_threads())).get("backend")
        if isinstance(measured, str):
            return measured
    backend = resolve_backend("auto", device)
    if backend in ("fused-int8", "onnx-int8"):
        return backend
    if device == "cuda":
        return "fused-bf16" if torch.cuda.is_bf16_supported() else "fused-fp16"
    return "fused-bf16" if cpu_has_bf16() else "fused-fp32"


def _reference(model_dir: Path, device: str) -> Subject:
    from speechbrain.inference.speaker import SpeakerRecognition

    model = SpeakerRecognition.from_hparams(
        source=str(model_dir),
        savedir=tempfile.mkdtemp(prefix="voiceauth-bench-sb-"),
        overrides={"pretrained_path": str(model_dir)},
        run_opts={"device": device},
    )
    model.eval()

    def embed_batch(wavs: Sequence[FloatArray], rate: int) -> FloatArray:
        out = []
        with torch.inference_mode():
            for w in wavs:  # SpeechBrain pads batches; one by one is its exact per-utterance embedding
                t = AF.resample(torch.from_numpy(np.asarray(w, dtype=np.float32)), rate, 16000)
                emb = model.encode_batch(t[None].to(device))[0, 0]
                out.append(torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy())
        return np.stack(out).astype(np.float32)

    return Subject(REFERENCE, "SpeechBrain SpeakerRecognition.encode_batch, fp32 eager", embed_batch)


def _int8_v1(model_dir: Path, device: str) -> FusedEngine:
    """The first int8 plan (for comparison): the res2net convolutions and the attention layers in fp32 too."""
    engine = FusedEngine(model_dir, mode="int8", device=device, verify=False)
    model = engine.model
    assert isinstance(model, FusedEcapa)
    big = {f"blocks.{b}.tdnn{i}" for b in range(3) for i in (1, 2)} - {"blocks.0.tdnn1"} | {"mfa"}
    quantize_model(model, keep_fp32=[n for n in model.gemm_layers() if n not in big] + ["att_conv"])
    return engine


def build_subject(name: str, model_dir: Path, device: str) -> Subject:
    """Subject ``name``: ``reference``, ``speechbrain-<prec>``, ``fused-<mode>``, ``fused-int8-v1``, ``onnx-int8``."""
    if name == REFERENCE:
        return _reference(model_dir, device)
    family, _, mode = name.partition("-")
    engine: EmbeddingEngine
    if family == "speechbrain":
        engine = EcapaEngine(model_dir, precision=mode, device=device, verify=False)
        desc = f"EcapaEngine (SpeechBrain modules), {mode}" + (" autocast" if mode != "fp32" else "")
    elif name == "onnx-int8":
        from voiceauth.embedding.backends.onnx import OnnxEngine

        engine = OnnxEngine(model_dir, mode="int8", device=device, verify=False)
        desc = "OnnxEngine: fused-int8's layer plan in ONNX Runtime (dynamic int8 MatMuls, per-frame scaled)"
    elif family == "openvino":
        from voiceauth.embedding.backends.openvino import OpenVinoEngine

        engine = OpenVinoEngine(model_dir, mode=mode, device=device, verify=False)
        desc = {
            "int8": "OpenVinoEngine: fused-int8's int8 layers (int8 weights per channel, activations per frame and "
            "128-channel group), the rest bf16 where native",
            "bf16": "OpenVinoEngine: every layer in OpenVINO's bf16",
        }.get(mode, f"OpenVinoEngine {mode}")
    elif name == "fused-int8-v1":
        engine = _int8_v1(model_dir, device)
        desc = "fused-int8 as first shipped: int8 only for the SE blocks' 1x1 layers (not the first) and the MFA layer"
    elif family == "fused":
        engine = FusedEngine(model_dir, mode=mode, device=device, verify=False)
        desc = {
            "fp32": "FusedEngine fp32: BN folded, channels-last GEMMs",
            "int8": "FusedEngine int8 GEMMs (FBGEMM, per-row scaled); first layers fp32, res2net bf16 if native",
        }.get(mode, f"FusedEngine, {mode} autocast")
    else:
        raise ValueError(f"unknown benchmark subject {name!r}")
    return Subject(name, desc, engine.embed_batch, engine)
