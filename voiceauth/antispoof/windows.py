"""Cutting an utterance into the countermeasure's fixed-length windows, and pooling window scores.

Pure numpy. AASIST was trained on 64,600-sample (4.04 s at 16 kHz) crops; shorter audio is tiled (repeated) up to
that length, as the release's own evaluation loader does. Longer audio is cut into windows with a hop; the last
window is aligned to the end so every sample is scored. At most ``max_windows`` windows are taken, spread evenly
over the utterance, which bounds the cost of a long upload.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from voiceauth.embedding.base import FloatArray
from voiceauth.errors import VoiceAuthError

__all__ = [
    "WINDOW_SAMPLES",
    "AntiSpoofError",
    "Pooling",
    "pool_scores",
    "tile_to",
    "trim_silence",
    "window_starts",
    "windows",
]

WINDOW_SAMPLES = 64_600

Pooling = Literal["mean", "median", "max", "min"]


class AntiSpoofError(VoiceAuthError):
    """Bad input to the countermeasure (empty audio, bad window geometry, unknown pooling)."""

    code = "antispoof-error"


def tile_to(samples: FloatArray, length: int) -> FloatArray:
    """Repeat ``samples`` until it is exactly ``length`` long (AASIST's padding for short audio)."""
    if samples.size == 0:
        raise AntiSpoofError("cannot score empty audio; at least one sample is needed")
    reps = -(-length // samples.size)
    return np.ascontiguousarray(np.tile(samples, reps)[:length], dtype=np.float32)


def trim_silence(samples: FloatArray, rate: int = 16_000, floor_db: float = 40.0, frame_ms: float = 20.0) -> FloatArray:
    """Cut leading and trailing non-speech: frames more than ``floor_db`` below the loudest frame.

    The ASVspoof 2019 LA models (AASIST included) learnt that bona fide recordings start with longer silence
    than spoofed ones (Muller et al., Interspeech 2021); trimming denies an attacker that lever, at some cost in
    accuracy (see benchmarks/results/antispoof.md). Audio with no frame above the floor is returned unchanged.
    """
    x = np.asarray(samples, dtype=np.float32).ravel()
    n = max(1, int(rate * frame_ms / 1000.0))
    frames = x.size // n
    if frames < 2:
        return x
    energy = (x[: frames * n].astype(np.float64).reshape(frames, n) ** 2).mean(axis=1) + 1e-20
    level = 10.0 * np.log10(energy)
    if level.max() < -100.0:  # digital silence: nothing to trim to
        return x
    active = np.flatnonzero(level > level.max() - floor_db)
    end = x.size if active[-1] == frames - 1 else (active[-1] + 1) * n
    return np.ascontiguousarray(x[active[0] * n : end])


def window_starts(n_samples: int, window: int, hop: int, max_windows: int) -> list[int]:
    """Start offsets of the windows for ``n_samples`` of audio (one window, at 0, if it is not longer)."""
    if window <= 0 or hop <= 0 or max_windows <= 0:
        raise AntiSpoofError(f"window {window}, hop {hop} and max_windows {max_windows} must all be positive integers")
    if n_samples <= window:
        return [0]
    last = n_samples - window
    starts = list(range(0, last + 1, hop))
    if starts[-1] != last:
        starts.append(last)  # the tail window, aligned to the end
    if len(starts) > max_windows:
        pick = np.linspace(0, len(starts) - 1, max_windows).round().astype(int)
        starts = [starts[i] for i in pick]
    return starts


def windows(
    samples: FloatArray, window: int = WINDOW_SAMPLES, hop: int | None = None, max_windows: int = 8
) -> npt.NDArray[np.float32]:
    """(n_windows, window) float32 matrix of the utterance's windows (tiled when it is short)."""
    x = np.asarray(samples, dtype=np.float32).ravel()
    if x.size == 0:
        raise AntiSpoofError("cannot score empty audio; at least one sample is needed")
    if not np.all(np.isfinite(x)):
        raise AntiSpoofError("audio contains NaN or Inf samples; only finite samples are accepted")
    step = hop if hop is not None else window // 2
    if x.size <= window:
        return tile_to(x, window)[None, :]
    starts = window_starts(x.size, window, step, max_windows)
    return np.stack([x[s : s + window] for s in starts]).astype(np.float32, copy=False)


def pool_scores(scores: npt.ArrayLike, pooling: Pooling = "mean") -> float:
    """One utterance score from its window scores."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0:
        raise AntiSpoofError("no window scores to pool")
    if pooling == "mean":
        return float(s.mean())
    if pooling == "median":
        return float(np.median(s))
    if pooling == "max":
        return float(s.max())
    if pooling == "min":
        return float(s.min())
    raise AntiSpoofError(f"pooling {pooling!r} is not supported; use mean, median, max or min")
