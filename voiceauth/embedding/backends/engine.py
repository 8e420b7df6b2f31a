"""The fused ECAPA engine: SpeechBrain's front end + :class:`FusedEcapa` in fp32, int8, bf16 or fp16.

Same pipeline and the same real weights as :class:`voiceauth.embedding.ecapa.EcapaEngine`: waveform at any rate ->
16 kHz (torchaudio's sinc kernel, built once per input rate) -> 80-band Fbank -> sentence mean normalisation ->
ECAPA-TDNN -> L2-normalised float32[192]. Batches are sorted by length and split into groups of similar length, so
mixed-length batches waste little work on padding; each group is padded and masked the way SpeechBrain does it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchaudio.transforms as T
from speechbrain.lobes.features import Fbank
from speechbrain.processing.features import InputNormalization

from models.fetch import verify_dir
from models.registry import ECAPA
from voiceauth.embedding.backends.fused import FusedEcapa
from voiceauth.embedding.backends.int8 import BF16_LAYERS, int8_available, quantize_model
from voiceauth.embedding.base import EMBEDDING_DIM, FloatArray, is_telephone
from voiceauth.embedding.ecapa import MODEL_SAMPLE_RATE, load_checkpoint, prepare_waveform
from voiceauth.embedding.precision import cpu_has_amx, cpu_has_bf16, resolve_device
from voiceauth.embedding.telephone import adapted_state, load_adapter
from voiceauth.errors import ConfigError

__all__ = ["MODES", "FusedEngine", "resolve_mode"]

log = logging.getLogger(__name__)


MODES = ("auto", "fp32", "int8", "bf16", "fp16")
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_mode(mode: str, device: str) -> str:
    """Map ``auto`` to the fastest mode that keeps accuracy on ``device``; validate explicit modes."""
    if mode not in MODES:
        raise ConfigError(f"fused engine mode {mode!r} is not supported; use one of {', '.join(MODES)}")
    if mode == "auto":
        if device == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if cpu_has_amx():
            return "bf16"
        return "int8" if int8_available() else "fp32"
    if mode == "int8" and (device != "cpu" or not int8_available()):
        raise ConfigError("mode 'int8' needs a CPU with FBGEMM kernels (x86); use 'fp32', 'bf16' or 'fp16'")
    if mode == "fp16" and device == "cpu":
        raise ConfigError("mode 'fp16' is only supported on CUDA; on CPU use 'int8', 'fp32' or 'bf16'")
    return mode


class FusedEngine:
    """ECAPA-TDNN with folded BatchNorm and channels-last GEMMs; implements ``EmbeddingEngine``.

    ``max_pad_ratio`` bounds the padding inside one model call (longest / shortest length in a group);
    ``max_batch_frames`` bounds one call's size (batch x frames, 100 frames per second of audio). Bigger calls do
    not pay on a CPU: the GEMMs are already at the hardware's rate at a few hundred frames, and activations of
    16,000 frames (196 MB per 3072-wide layer) fall out of cache (int8, one thread, 32 utterances of 2-8 s: 46 s of
    audio per CPU second at 2,000 frames, 36 at 16,000). Thread-safe.
    """

    dim = EMBEDDING_DIM

    def __init__(
        self,
        model_dir: Path,
        mode: str = "auto",
        device: str = "auto",
        num_threads: int | None = None,
        verify: bool = True,
        max_pad_ratio: float = 1.25,
        max_batch_frames: int = 2_000,
        telephone_adapter: Path | None = None,
    ) -> None:
        if verify:
            verify_dir(model_dir, ECAPA)
        self.device = resolve_device(device)
        self.precision = resolve_mode(mode, self.device)
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        self.max_pad_ratio = max_pad_ratio
        self.max_batch_frames = max_batch_frames
        ckpt = model_dir / "embedding_model.ckpt"
        state = load_checkpoint(ckpt)
        self.model = self._build(state)
        # telephone-band audio runs through ECAPA with its first two blocks adapted to the channel (models/telephone)
        self.telephone_adapter = telephone_adapter
        self.model_tel = (
            self._build(adapted_state(state, load_adapter(telephone_adapter)))
            if telephone_adapter is not None
            else None
        )
        self.fbank = Fbank(n_mels=80).eval().to(self.device)
        self.norm = InputNormalization(norm_type="sentence", std_norm=False).eval().to(self.device)
        self._resamplers: dict[int, T.Resample] = {}
        self._lock = threading.Lock()
        log.info("fused ECAPA engine ready on %s in %s", self.device, self.precision)

    def _build(self, state: dict[str, Any]) -> FusedEcapa:
        model = FusedEcapa(state).eval()
        if self.precision == "int8":
            quantize_model(model, bf16_layers=BF16_LAYERS if cpu_has_bf16() else ())
        return model.to(self.device)

    # -- public API -------------------------------------------------------------------------------------

    def embed(self, wav: FloatArray, sample_rate: int, *, telephone: bool = False) -> FloatArray:
        out: FloatArray = self.embed_batch([wav], sample_rate, telephone=telephone)[0]
        return out

    def embed_batch(self, wavs: Sequence[FloatArray], sample_rate: int, *, telephone: bool = False) -> FloatArray:
        if len(wavs) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        tel = is_telephone(telephone, sample_rate) and self.model_tel is not None
        with self._lock, torch.inference_mode():
            tensors = [self._prepare(w, sample_rate) for w in wavs]
            out = torch.empty(len(tensors), self.dim)
            for group in self._groups([t.numel() for t in tensors]):
                out[group] = self._forward([tensors[i] for i in group], tel).cpu()
        result: FloatArray = torch.nn.functional.normalize(out, dim=-1).numpy().astype(np.float32)
        return result

    def embed_tensor16k(self, batch: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Low-level: padded 16 kHz batch ``[n, time]`` + relative lengths ``[n]`` -> raw embeddings ``[n, 192]``.

        Features are computed on the padded batch as SpeechBrain does; the network (the released, full-band one)
        then treats each utterance at its own frame count (``ceil(length * frames)``).
        """
        with torch.inference_mode():
            batch = batch.to(self.device)
            lengths = lengths.to(self.device)
            feats = self.norm(self.fbank(batch), lengths)
            frames = torch.ceil(lengths * feats.shape[1]).long().clamp_(1, feats.shape[1])
            return self._network(feats, frames)

    def features(self, wav16k: torch.Tensor) -> torch.Tensor:
        """One 16 kHz waveform ``[time]`` -> normalised Fbank ``[frames, 80]`` (SpeechBrain's front end)."""
        with torch.inference_mode():
            x = wav16k.to(self.device)[None]
            out: torch.Tensor = self.norm(self.fbank(x), torch.ones(1, device=self.device))[0]
        return out

    # -- internals ---------------------------------------------------------------------------------------

    def _resample(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        if sample_rate == MODEL_SAMPLE_RATE:
            return wav
        rs = self._resamplers.get(sample_rate)
        if rs is None:  # same kernel as torchaudio.functional.resample, computed once per rate
            rs = self._resamplers[sample_rate] = T.Resample(sample_rate, MODEL_SAMPLE_RATE)
        out: torch.Tensor = rs(wav)
        return out

    def _prepare(self, wav: FloatArray, sample_rate: int) -> torch.Tensor:
        return prepare_waveform(wav, sample_rate, self._resample)

    def _groups(self, sizes: list[int]) -> list[list[int]]:
        """Indices grouped by similar length (sorted, longest/shortest <= max_pad_ratio, bounded size)."""
        order = sorted(range(len(sizes)), key=lambda i: sizes[i])
        groups: list[list[int]] = []
        for i in order:
            if groups:
                g = groups[-1]
                frames = (len(g) + 1) * (sizes[i] // 160 + 1)
                if sizes[i] <= sizes[g[0]] * self.max_pad_ratio and frames <= self.max_batch_frames:
                    g.append(i)
                    continue
            groups.append([i])
        return groups

    def _autocast(self) -> Any:
        dtype = _AUTOCAST.get(self.precision)
        if dtype is None:
            return nullcontext()
        return torch.autocast(self.device, dtype=dtype)

    def _network(self, feats: torch.Tensor, frames: torch.Tensor | None, telephone: bool = False) -> torch.Tensor:
        model = self.model_tel if telephone and self.model_tel is not None else self.model
        with self._autocast():
            emb = model(feats, frames)
        return emb.float()

    def _forward(self, tensors: list[torch.Tensor], telephone: bool = False) -> torch.Tensor:
        """Each utterance's own features, zero-padded to a batch; the network masks and reflects per utterance."""
        feats = [self.features(t) for t in tensors]
        if len(feats) == 1:
            return self._network(feats[0][None], None, telephone)
        frames = torch.tensor([f.shape[0] for f in feats], device=self.device)
        batch = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
        return self._network(batch, frames, telephone)
