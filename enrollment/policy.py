"""Pure enrolment rules: progress, the quality screen and how utterance embeddings make a voiceprint."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voiceauth.audio.types import Quality
from voiceauth.config import Settings
from voiceauth.embedding.base import FloatArray

__all__ = [
    "ENROLLMENT_CODES",
    "EnrollmentPolicy",
    "combine_embeddings",
    "full_band_voiceprint",
    "progress_percent",
    "screen_quality",
]

#: the front end's feedback codes plus the ones enrolment adds
ENROLLMENT_CODES = ("OK", "NO_SPEECH", "TOO_SHORT", "TOO_NOISY", "CLIPPED", "TOO_QUIET", "SPEAKER_MISMATCH")


@dataclass(frozen=True)
class EnrollmentPolicy:
    target_speech_s: float = 20.0  # net speech for 100 %
    min_speech_s: float = 8.0  # net speech before the voiceprint is usable
    min_utterance_speech_s: float = 1.0  # shorter utterances are refused with TOO_SHORT
    consistency_operating_point: str = "convenience"  # anti-poisoning threshold name
    watchlist_operating_point: str = "high_security"
    retention: dt.timedelta = dt.timedelta(days=3 * 365)

    @classmethod
    def from_settings(cls, s: Settings) -> EnrollmentPolicy:
        return cls(
            target_speech_s=s.enroll_target_speech_s,
            min_speech_s=min(s.enroll_min_speech_s, s.enroll_target_speech_s),
            min_utterance_speech_s=s.enroll_min_utterance_speech_s,
            consistency_operating_point=s.enroll_consistency_operating_point,
            watchlist_operating_point=s.watchlist_operating_point,
            retention=dt.timedelta(days=s.retention_days),
        )


def progress_percent(net_speech_s: float, target_speech_s: float) -> float:
    """0-100, one decimal, reaching 100 exactly at the target."""
    return round(min(100.0, max(0.0, 100.0 * net_speech_s / target_speech_s)), 1)


def screen_quality(quality: Quality, policy: EnrollmentPolicy) -> tuple[str, ...]:
    """The feedback codes that refuse this utterance, or () when it may be enrolled."""
    if not quality.ok:
        return tuple(c for c in quality.codes if c != "OK") or ("NO_SPEECH",)
    if quality.net_speech_s < policy.min_utterance_speech_s:
        return ("TOO_SHORT",)
    return ()


def combine_embeddings(embeddings: Sequence[FloatArray], weights: Sequence[float]) -> FloatArray:
    """Speech-weighted mean of unit-normalised embeddings, renormalised (the voiceprint)."""
    if not embeddings:
        raise ValueError("no embeddings to combine")
    m = np.stack([np.asarray(e, dtype=np.float64) / max(float(np.linalg.norm(e)), 1e-12) for e in embeddings])
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum() if w.sum() > 0 else np.full(len(embeddings), 1.0 / len(embeddings))
    v = (w[:, None] * m).sum(axis=0)
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


def full_band_voiceprint(
    embeddings_wide: Sequence[FloatArray | None], speech_s: Sequence[float], min_speech_s: float
) -> FloatArray | None:
    """The full-band voiceprint of accepted utterances (``None`` where an utterance had no full band): the
    speech-weighted mean of those that have one, as :func:`combine_embeddings` builds the telephone-band voiceprint,
    or None when they hold less than ``min_speech_s`` of net speech together."""
    wide = [(e, s) for e, s in zip(embeddings_wide, speech_s, strict=True) if e is not None]
    if not wide or sum(s for _, s in wide) < min_speech_s:
        return None
    return combine_embeddings([e for e, _ in wide], [s for _, s in wide])
