"""Resampling to the engine's 16 kHz with torchaudio's windowed-sinc kernel, whole or chunk by chunk.

:class:`StreamResampler` applies the kernel of ``torchaudio.transforms.Resample`` incrementally: fed any
chunking of a signal, it emits exactly what ``torchaudio.functional.resample`` gives for the whole signal
(the same convolution over the same zero-padded samples), holding back only the kernel's look-ahead
(8 input samples from 8 kHz, about 10 ms from 44.1 kHz). Files and streams both go through it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt
import torchaudio.transforms as T

from voiceauth.embedding.base import FloatArray

__all__ = ["TARGET_RATE", "StreamResampler", "resample"]

TARGET_RATE = 16000


@lru_cache(maxsize=16)
def _kernel(orig: int, new: int) -> tuple[npt.NDArray[np.float32], int, int, int]:
    """(kernel [n, 2w + o] float32, w, o, n) for orig -> new, built once per rate pair."""
    module = T.Resample(orig, new)
    o, n = orig // module.gcd, new // module.gcd
    kernel = module.kernel.detach().reshape(n, -1).numpy().astype(np.float32)
    kernel.setflags(write=False)
    return kernel, int(module.width), o, n


class StreamResampler:
    """Incremental resampler from ``orig`` Hz to ``new`` Hz (default 16 kHz). Not thread-safe."""

    def __init__(self, orig: int, new: int = TARGET_RATE) -> None:
        self.orig = int(orig)
        self.new = int(new)
        self._identity = self.orig == self.new
        if not self._identity:
            self._k, self._w, self._o, self._n = _kernel(self.orig, self.new)
            self._buf = np.zeros(self._w, dtype=np.float32)  # left zero padding, as torchaudio pads
        self._in = 0
        self._out = 0
        self._flushed = False

    def feed(self, samples: npt.ArrayLike) -> FloatArray:
        """Take the next input samples; return the output samples that are now final."""
        if self._flushed:
            raise RuntimeError("StreamResampler.feed after flush")
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._in += x.size
        if self._identity:
            self._out += x.size
            return x.copy()
        self._buf = np.concatenate([self._buf, x])
        return self._drain()

    def flush(self) -> FloatArray:
        """End of signal: emit the remaining output (total length ceil(len * new / orig))."""
        if self._flushed:
            return np.zeros(0, dtype=np.float32)
        self._flushed = True
        if self._identity:
            return np.zeros(0, dtype=np.float32)
        self._buf = np.concatenate([self._buf, np.zeros(self._w + self._o, dtype=np.float32)])
        out = self._drain()
        target = -(-self._in * self._n // self._o)  # ceil
        keep = max(0, min(out.size, target - (self._out - out.size)))
        self._out -= out.size - keep
        return out[:keep]

    def _drain(self) -> FloatArray:
        span = 2 * self._w + self._o
        if self._buf.size < span:
            return np.zeros(0, dtype=np.float32)
        blocks = (self._buf.size - span) // self._o + 1
        frames = np.lib.stride_tricks.sliding_window_view(self._buf, span)[: (blocks - 1) * self._o + 1 : self._o]
        # numpy, not torch: a small matmul per chunk, free of torch's thread-team barrier on busy machines
        out = (frames @ self._k.T).reshape(-1).astype(np.float32)  # [blocks, n] -> time order
        self._buf = self._buf[blocks * self._o :].copy()
        self._out += out.size
        return out


def resample(samples: npt.ArrayLike, orig: int, new: int = TARGET_RATE) -> FloatArray:
    """Resample a whole mono signal (the same result as feeding it to a :class:`StreamResampler`)."""
    r = StreamResampler(orig, new)
    head = r.feed(samples)
    return np.concatenate([head, r.flush()])
