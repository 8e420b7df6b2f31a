"""Fraudster watchlist search (1:N) and operating-point resolution, shared by enrolment and verification.

Pure: takes decrypted entries and a scorer, returns the best match at or above the threshold, if any.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from voiceauth.embedding.base import FloatArray
from voiceauth.errors import ConfigError
from voiceauth.scoring.base import Scorer

__all__ = ["COSINE_OPERATING_POINTS", "WatchlistHit", "resolve_threshold", "search_watchlist"]

#: thresholds on :class:`~voiceauth.scoring.base.CosineScorer`'s 0-100 scale (50 + 50 * cosine), used only
#: while no calibrated scorer is wired in; the production scorer supplies measured operating points
COSINE_OPERATING_POINTS: Mapping[str, float] = {"high_security": 80.0, "convenience": 72.5}


@dataclass(frozen=True)
class WatchlistHit:
    entry_id: int
    label: str
    score: float  # calibrated 0-100


def resolve_threshold(name: str, defaults: Mapping[str, float], overrides: Mapping[str, float]) -> float:
    """A named operating point: the tenant's override, else the scorer's default."""
    if name in overrides:
        return float(overrides[name])
    if name in defaults:
        return float(defaults[name])
    known = sorted(set(defaults) | set(overrides))
    raise ConfigError(f"operating point {name!r} is not defined; known: {', '.join(known) or 'none'}")


def search_watchlist(
    scorer: Scorer,
    entries: Iterable[tuple[int, str, FloatArray]],
    probe: FloatArray,
    *,
    threshold: float,
    narrowband: bool,
    probe_speech_s: float,
) -> WatchlistHit | None:
    """The highest-scoring entry whose calibrated score reaches ``threshold``, or None."""
    best: WatchlistHit | None = None
    for entry_id, label, emb in entries:
        s = scorer.score(emb, probe, narrowband=narrowband, probe_speech_s=probe_speech_s).calibrated
        if s >= threshold and (best is None or s > best.score):
            best = WatchlistHit(entry_id, label, s)
    return best
