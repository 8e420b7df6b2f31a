"""Quality measures and feedback codes for an utterance (pure functions over per-window statistics).

Measures, all on the 32 ms VAD window grid of the 16 kHz signal:
- net speech: seconds inside the (padded) VAD speech segments;
- SNR: mean power of speech windows over the noise power, estimated as the median power of the non-speech
  windows (when there are at least 0.25 s of them) or else the 10th percentile of all window powers;
- clipping ratio: fraction of decoded samples within 1% of the codec's full scale;
- level: RMS of the speech windows in dBFS (a full-scale square wave is 0 dBFS, a full-scale sine -3).

Codes: ``NO_SPEECH`` (no segment at all; then only ``CLIPPED`` may join it), ``TOO_SHORT``, ``TOO_NOISY``,
``CLIPPED``, ``TOO_QUIET``; ``OK`` when none applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from voiceauth.audio.types import Quality

__all__ = [
    "CLIP_FRACTION",
    "QualityThresholds",
    "assess",
    "clipped_count",
    "high_band_energy",
    "window_powers",
]

CLIP_FRACTION = 0.99  # a sample within 1% of full scale counts as clipped
_FLOOR = 1e-12  # -120 dBFS
_MIN_NOISE_WINDOWS = 8  # 0.25 s of non-speech before trusting it as the noise estimate
_HIGH_BAND = slice(176, 240)  # 5.5-7.5 kHz in a 512-point FFT at 16 kHz


@dataclass(frozen=True)
class QualityThresholds:
    min_speech_s: float = 1.0
    min_snr_db: float = 10.0
    max_clipping_ratio: float = 0.01
    min_level_dbfs: float = -40.0


def clipped_count(samples: npt.ArrayLike, full_scale: float) -> int:
    x = np.abs(np.asarray(samples, dtype=np.float32))
    return int(np.count_nonzero(x >= CLIP_FRACTION * full_scale))


def window_powers(windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Mean square of each row of ``windows`` [n, 512]."""
    w = np.asarray(windows, dtype=np.float64)
    return np.mean(w * w, axis=1) if w.size else np.zeros(0)


def high_band_energy(windows: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(energy 5.5-7.5 kHz, energy 100 Hz - 8 kHz) per 512-sample 16 kHz window, Hann-windowed.

    The band starts well above 4 kHz because a resampler's images of 3-4 kHz speech leak just above it.
    """
    w = np.asarray(windows, dtype=np.float64)
    if not w.size:
        return np.zeros(0), np.zeros(0)
    spec = np.abs(np.fft.rfft(w * np.hanning(w.shape[1]), axis=1)) ** 2
    return spec[:, _HIGH_BAND].sum(axis=1), spec[:, 3:].sum(axis=1)


def _db(power: float) -> float:
    return 10.0 * math.log10(max(power, _FLOOR))


def assess(
    powers: npt.ArrayLike,
    speech_mask: npt.ArrayLike,
    *,
    net_speech_s: float,
    clipping_ratio: float,
    thresholds: QualityThresholds,
) -> Quality:
    """Quality of an utterance from its window powers and which windows are speech."""
    p = np.asarray(powers, dtype=np.float64)
    mask = np.asarray(speech_mask, dtype=bool)[: p.size]
    if p.size == 0 or not mask.any() or net_speech_s <= 0.0:
        level = _db(float(p.mean())) if p.size else _db(0.0)
        clipped = ("CLIPPED",) if clipping_ratio > thresholds.max_clipping_ratio else ()
        return Quality(0.0, 0.0, float(clipping_ratio), round(level, 2), ("NO_SPEECH", *clipped))
    speech_power = float(p[mask].mean())
    rest = p[~mask]
    noise = float(np.median(rest)) if rest.size >= _MIN_NOISE_WINDOWS else float(np.percentile(p, 10))
    noise = max(noise, _FLOOR)
    snr = _db(max(speech_power - noise, _FLOOR)) - _db(noise)
    level = _db(speech_power)
    codes: list[str] = []
    if net_speech_s < thresholds.min_speech_s:
        codes.append("TOO_SHORT")
    if snr < thresholds.min_snr_db:
        codes.append("TOO_NOISY")
    if clipping_ratio > thresholds.max_clipping_ratio:
        codes.append("CLIPPED")
    if level < thresholds.min_level_dbfs:
        codes.append("TOO_QUIET")
    return Quality(
        net_speech_s=round(float(net_speech_s), 3),
        snr_db=round(float(snr), 2),
        clipping_ratio=float(clipping_ratio),
        level_dbfs=round(float(level), 2),
        codes=tuple(codes) or ("OK",),
    )
