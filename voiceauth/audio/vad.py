"""Voice activity detection with Silero VAD (MIT), the model file shipped inside the ``silero-vad`` wheel.

The TorchScript model (``silero_vad/data/silero_vad.jit``) holds two networks, for 8 kHz (256-sample
windows) and 16 kHz (512-sample windows), both 32 ms. It is loaded once per process (:func:`load_vad_model`,
cached) and shared: each :class:`VadStream` keeps its own recurrent state and context, calling the
stateless inner networks directly, so concurrent streams do not disturb each other.

:func:`speech_segments` turns per-window speech probabilities into segments with the same hysteresis rules
as Silero's ``get_speech_timestamps`` (threshold / threshold - 0.15, minimum speech and silence, padding).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from voiceauth.embedding.base import FloatArray
from voiceauth.errors import ModelFileMissing, UnsupportedFormat

__all__ = [
    "VAD_RATES",
    "WINDOW_MS",
    "VadParams",
    "VadStream",
    "load_vad_model",
    "speech_segments",
    "vad_model_path",
]

log = logging.getLogger(__name__)

VAD_RATES = (8000, 16000)
WINDOW_MS = 32  # one decision per 32 ms: 256 samples at 8 kHz, 512 at 16 kHz
_CONTEXT = {8000: 32, 16000: 64}
_WINDOW = {8000: 256, 16000: 512}
_LOCK = threading.Lock()


def _omp() -> Any:
    """The OpenMP runtime torch loaded (for per-thread settings), or None without one."""
    try:
        lib = ctypes.CDLL(None)
        lib.omp_get_max_threads.restype = ctypes.c_int
        lib.omp_set_num_threads.argtypes = [ctypes.c_int]
        return lib
    except (AttributeError, OSError):
        return None


_OMP = _omp()


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch ops on the calling thread with one OpenMP thread, then restore its setting.

    Silero's networks are tiny; with torch's default of one OpenMP thread per core, each call pays a
    thread-team barrier, which on a busy machine costs 10-50x the arithmetic. ``torch.set_num_threads``
    would also change the default of threads not yet started (the embedding engine's), so only the calling
    thread's OpenMP setting is changed, through the runtime torch already loaded (OpenMP settings are
    per thread), and restored at once.
    """
    if _OMP is None:
        yield
        return
    torch.get_num_threads()  # torch's lazy per-thread initialisation happens first, not after us
    before = int(_OMP.omp_get_max_threads())
    _OMP.omp_set_num_threads(1)
    try:
        yield
    finally:
        _OMP.omp_set_num_threads(before)


def vad_model_path() -> Path:
    """The TorchScript model inside the installed silero-vad wheel (found without importing the package,
    whose import sets torch's global thread count to 1)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileMissing("the silero-vad package is not installed; install voiceauth's dependencies")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.jit"
    if not path.is_file():
        raise ModelFileMissing(f"Silero VAD model file not found at {path}; reinstall silero-vad")
    return path


@lru_cache(maxsize=1)
def load_vad_model() -> Any:
    """Load the Silero TorchScript model once (thread-safe); later calls return the same object."""
    with _LOCK:
        path = vad_model_path()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated in favour of export
            model = torch.jit.load(str(path), map_location="cpu")
        model.eval()
        log.info("loaded Silero VAD from %s (sha256 %s)", path, digest[:16])
        return model


@dataclass(frozen=True)
class VadParams:
    """Segmentation rules (milliseconds); defaults follow Silero's ``get_speech_timestamps``."""

    threshold: float = 0.5
    min_speech_ms: int = 200
    min_silence_ms: int = 100
    speech_pad_ms: int = 30


class _BatchedNet:
    """One Silero network (8 or 16 kHz) evaluated over many windows per call.

    Silero's per-window forward is ``STFT -> conv encoder -> LSTMCell(state) -> ReLU, 1x1 conv, sigmoid``.
    Only the LSTM carries state from window to window, so the STFT and encoder run on all windows as one
    batch and the LSTM cell's weights run as an ``nn.LSTM`` over the window sequence: a few calls per chunk
    instead of three per window, with the same results (checked against the per-window model in the tests).
    """

    def __init__(self, net: Any) -> None:
        self.net = net
        params = dict(net.decoder.rnn.named_parameters())
        self.lstm = torch.nn.LSTM(128, 128, batch_first=True)
        # LSTMCell and LSTM share the gate layout (i, f, g, o), so the weights carry over unchanged
        self.lstm.load_state_dict(
            {f"{key}_l0": params[key].detach().clone() for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        )
        self.lstm.eval()
        self.head = net.decoder.decoder  # Dropout, ReLU, Conv1d(128, 1, 1), Sigmoid

    def __call__(
        self, windows: npt.NDArray[np.float32], state: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[FloatArray, tuple[torch.Tensor, torch.Tensor]]:
        with torch.inference_mode():
            x = torch.from_numpy(windows)
            feats = self.net.encoder(self.net.run_extractors(x)).squeeze(-1)  # [n, 128]
            seq, (h, c) = self.lstm(feats.unsqueeze(0), state)
            probs = self.head(seq[0].unsqueeze(-1)).reshape(-1)  # [n]
        return probs.numpy().astype(np.float32), (h, c)


@lru_cache(maxsize=2)
def _batched(sample_rate: int) -> _BatchedNet:
    model = load_vad_model()
    return _BatchedNet(model._model if sample_rate == 16000 else model._model_8k)


class VadStream:
    """Speech probability per 32 ms window of a signal fed in chunks at 8 or 16 kHz. Not thread-safe."""

    def __init__(self, sample_rate: int) -> None:
        if sample_rate not in VAD_RATES:
            raise UnsupportedFormat(f"VAD runs at 8000 or 16000 Hz, not {sample_rate} Hz")
        self.sample_rate = sample_rate
        self.window = _WINDOW[sample_rate]
        self._ctx = _CONTEXT[sample_rate]
        self._net = _batched(sample_rate)
        self._state: tuple[torch.Tensor, torch.Tensor] | None = None
        self._pending = np.zeros(self._ctx, dtype=np.float32)  # context + not yet windowed samples
        self._flushed = False

    def feed(self, samples: npt.ArrayLike) -> FloatArray:
        """Take samples; return the probabilities of the windows completed by them."""
        if self._flushed:
            raise RuntimeError("VadStream.feed after flush")
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._pending = np.concatenate([self._pending, x])
        n = (self._pending.size - self._ctx) // self.window
        if n <= 0:
            return np.zeros(0, dtype=np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(self._pending, self._ctx + self.window)
        batch = windows[: n * self.window : self.window].copy()  # [n, ctx + window], writable
        with _one_thread():
            probs, self._state = self._net(batch, self._state)
        self._pending = self._pending[n * self.window :].copy()
        return probs

    def flush(self) -> FloatArray:
        """End of signal: the last partial window, zero-padded (empty if none)."""
        if self._flushed:
            return np.zeros(0, dtype=np.float32)
        rest = self._pending.size - self._ctx
        out = self.feed(np.zeros(self.window - rest, dtype=np.float32)) if rest > 0 else np.zeros(0, np.float32)
        self._flushed = True
        return out


def speech_segments(probs: npt.ArrayLike, params: VadParams, *, final: bool = True) -> list[tuple[int, int]]:
    """Speech segments as [start, end) window indices, before padding.

    ``final=False`` (a stream still running) keeps a trailing segment open-ended to the last window even if
    it is shorter than the minimum, because more speech may follow.
    """
    p = np.asarray(probs, dtype=np.float32)
    on, off = params.threshold, max(params.threshold - 0.15, 0.01)
    min_speech = max(1, -(-params.min_speech_ms // WINDOW_MS))
    min_silence = max(1, -(-params.min_silence_ms // WINDOW_MS))
    segments: list[tuple[int, int]] = []
    start: int | None = None
    silence_from: int | None = None
    for i, v in enumerate(p.tolist()):
        if v >= on:
            if start is None:
                start = i
            silence_from = None
        elif start is not None and v < off:
            if silence_from is None:
                silence_from = i
            if i + 1 - silence_from >= min_silence:
                segments.append((start, silence_from))
                start, silence_from = None, None
    tail: tuple[int, int] | None = None
    if start is not None:
        tail = (start, p.size if silence_from is None else silence_from)
    kept = [s for s in segments if s[1] - s[0] >= min_speech]
    if tail is not None and (tail[1] - tail[0] >= min_speech or (not final and silence_from is None)):
        kept.append(tail)
    return kept
