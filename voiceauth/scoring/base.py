"""The scoring contract between the scoring back end and enrolment / verification."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from voiceauth.embedding.base import FloatArray, cosine

__all__ = ["CosineScorer", "Score", "Scorer"]


@dataclass(frozen=True)
class Score:
    raw_cosine: float  # plain cosine of the two embeddings (security staff only)
    normalized: float  # after score normalisation (e.g. AS-norm); equals raw_cosine when none
    calibrated: float  # 0-100, same meaning across tenants; what thresholds apply to


class Scorer(Protocol):
    def score(self, enrolled: FloatArray, probe: FloatArray, *, narrowband: bool, probe_speech_s: float) -> Score: ...


class CosineScorer:
    """Plain cosine, mapped linearly to 0-100 (the baseline; the production scorer normalises)."""

    def score(self, enrolled: FloatArray, probe: FloatArray, *, narrowband: bool, probe_speech_s: float) -> Score:
        c = cosine(enrolled, probe)
        return Score(raw_cosine=c, normalized=c, calibrated=max(0.0, min(100.0, 50.0 + 50.0 * c)))
