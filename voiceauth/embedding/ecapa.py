"""ECAPA-TDNN speaker embeddings with SpeechBrain's modules and the real ``spkrec-ecapa-voxceleb`` weights.

Pipeline: mono waveform at any rate -> 16 kHz (torchaudio) -> 80-band Fbank -> sentence mean normalisation ->
ECAPA-TDNN -> L2-normalised float32[192]. Feature extraction always runs in fp32; the network runs in the
precision chosen by :mod:`voiceauth.embedding.precision` (bf16 autocast on CPUs with AMX / AVX512-BF16).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchaudio.functional as AF
from speechbrain.lobes.features import Fbank
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
from speechbrain.processing.features import InputNormalization

from models.fetch import verify_dir
from models.registry import ECAPA
from voiceauth.embedding.base import EMBEDDING_DIM, FloatArray, is_telephone
from voiceauth.embedding.precision import resolve_device, resolve_precision
from voiceauth.errors import EmbeddingError, ModelError

__all__ = [
    "MIN_SAMPLES",
    "MODEL_SAMPLE_RATE",
    "EcapaEngine",
    "ecapa_tdnn",
    "load_checkpoint",
    "prepare_waveform",
    "to_model_rate",
]

log = logging.getLogger(__name__)

MODEL_SAMPLE_RATE = 16000
MIN_SAMPLES = 1600  # 0.1 s at 16 kHz: below this ECAPA's receptive field sees mostly padding
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def to_model_rate(wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Resample a float tensor (..., time) to the model's 16 kHz with torchaudio's sinc interpolation."""
    if sample_rate == MODEL_SAMPLE_RATE:
        return wav
    return AF.resample(wav, sample_rate, MODEL_SAMPLE_RATE)


def load_checkpoint(ckpt: Path) -> dict[str, Any]:
    """The ECAPA state dict (tensors only: ``weights_only=True``); a damaged file is a ModelError naming it."""
    try:
        state: dict[str, Any] = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged pickles
        raise ModelError(f"could not load {ckpt}: {exc}") from exc
    return state


def prepare_waveform(
    wav: FloatArray, sample_rate: int, resample: Callable[[torch.Tensor, int], torch.Tensor]
) -> torch.Tensor:
    """Validate one mono waveform and bring it to 16 kHz with ``resample``; typed errors for unusable input."""
    arr = np.asarray(wav)
    if arr.ndim != 1:
        raise EmbeddingError(f"expected a mono waveform (1-D array), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise EmbeddingError("waveform contains NaN or Inf samples")
    if sample_rate <= 0:
        raise EmbeddingError(f"sample rate {sample_rate} Hz is not valid; give the waveform's rate in Hz (> 0)")
    t = resample(torch.from_numpy(arr.astype(np.float32, copy=False)), sample_rate)
    if t.numel() < MIN_SAMPLES:
        raise EmbeddingError(
            f"waveform too short to embed: {t.numel() / MODEL_SAMPLE_RATE:.3f} s, need at least "
            f"{MIN_SAMPLES / MODEL_SAMPLE_RATE:.1f} s"
        )
    return t


def ecapa_tdnn(state: dict[str, Any], source: Path) -> ECAPA_TDNN:
    """SpeechBrain's ECAPA-TDNN (spkrec-ecapa-voxceleb configuration) with ``state`` loaded, in eval mode."""
    model = ECAPA_TDNN(
        input_size=80,
        channels=[1024, 1024, 1024, 1024, 3072],
        kernel_sizes=[5, 3, 3, 3, 1],
        dilations=[1, 2, 3, 4, 1],
        attention_channels=128,
        lin_neurons=EMBEDDING_DIM,
    )
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelError(
            f"{source} does not match the ECAPA-TDNN architecture: missing keys {missing[:5]}, "
            f"unexpected keys {unexpected[:5]}"
        )
    return model.eval()


class EcapaEngine:
    """The production embedding engine.

    Thread-safe: calls are serialised by a lock (torch already uses all cores for one call).
    """

    dim = EMBEDDING_DIM

    def __init__(
        self,
        model_dir: Path,
        precision: str = "auto",
        device: str = "auto",
        num_threads: int | None = None,
        verify: bool = True,
        telephone_adapter: Path | None = None,
    ) -> None:
        if verify:
            verify_dir(model_dir, ECAPA)
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        self._lock = threading.Lock()
        self.fbank = Fbank(n_mels=80)
        self.norm = InputNormalization(norm_type="sentence", std_norm=False)
        ckpt = model_dir / "embedding_model.ckpt"
        state = load_checkpoint(ckpt)
        self.model = ecapa_tdnn(state, ckpt).to(self.device)
        self.telephone_adapter = telephone_adapter
        self.model_tel: ECAPA_TDNN | None = None  # the telephone-adapted network (models/telephone), if used
        if telephone_adapter is not None:
            from voiceauth.embedding.telephone import adapted_state, load_adapter

            tel_state = adapted_state(state, load_adapter(telephone_adapter))
            self.model_tel = ecapa_tdnn(tel_state, telephone_adapter).to(self.device)
        self.fbank.eval().to(self.device)
        self.norm.eval().to(self.device)
        log.info("ECAPA engine ready on %s in %s", self.device, self.precision)

    # -- public API -------------------------------------------------------------------------------------

    def embed(self, wav: FloatArray, sample_rate: int, *, telephone: bool = False) -> FloatArray:
        out: FloatArray = self.embed_batch([wav], sample_rate, telephone=telephone)[0]
        return out

    def embed_batch(self, wavs: Sequence[FloatArray], sample_rate: int, *, telephone: bool = False) -> FloatArray:
        if len(wavs) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        tensors = [self._prepare(w, sample_rate) for w in wavs]
        with self._lock, torch.inference_mode():
            emb = self._forward(tensors, is_telephone(telephone, sample_rate))
        return emb

    def embed_tensor16k(self, batch: torch.Tensor, lengths: torch.Tensor, telephone: bool = False) -> torch.Tensor:
        """Low-level: padded 16 kHz batch [n, time] + relative lengths [n] -> raw (unnormalised) embeddings."""
        model = self.model_tel if telephone and self.model_tel is not None else self.model
        with torch.inference_mode():
            feats = self.fbank(batch.to(self.device))
            feats = self.norm(feats, lengths.to(self.device))
            with self._autocast():
                emb = model(feats, lengths.to(self.device))
        return emb.float().reshape(batch.shape[0], -1)

    # -- internals ---------------------------------------------------------------------------------------

    def _prepare(self, wav: FloatArray, sample_rate: int) -> torch.Tensor:
        return prepare_waveform(wav, sample_rate, to_model_rate)

    def _autocast(self) -> Any:
        dtype = _AUTOCAST_DTYPES.get(self.precision)
        if dtype is None:
            return nullcontext()
        return torch.autocast(self.device, dtype=dtype)

    def _forward(self, tensors: list[torch.Tensor], telephone: bool = False) -> FloatArray:
        """Embed utterances in batches of equal length.

        Zero padding is not neutral for ECAPA (its convolutions reflect-pad at the true end of a signal, and
        Fbank frames straddle the end), so a padded short utterance drifts from its unpadded embedding
        (cosine ~0.98 for 0.8 s). Utterances are therefore grouped by exact length; equal lengths (fixed
        windows, streaming chunks) share one model call and results are exactly the one-by-one embeddings.
        """
        out = torch.empty(len(tensors), self.dim)
        groups: dict[int, list[int]] = {}
        for i, t in enumerate(tensors):
            groups.setdefault(t.numel(), []).append(i)
        for idx in groups.values():
            batch = torch.stack([tensors[i] for i in idx])
            emb = self.embed_tensor16k(batch, torch.ones(len(idx)), telephone)
            out[idx] = torch.nn.functional.normalize(emb, dim=-1).cpu()
        result: FloatArray = out.numpy().astype(np.float32)
        return result
