"""Named decision thresholds on the calibrated 0-100 scale, chosen from measured impostor scores.

``python -m voiceauth.scoring.build`` scores every non-target trial of the cohort half of the LibriSpeech
readers (5-fold over readers: each fold's pieces scored by a back end trained on the other folds) through each channel,
and for each named point takes the lowest calibrated threshold whose false-accept rate on those trials is at
most the target (:func:`voiceauth.scoring.metrics.threshold_at_far`). ``default_operating_points`` returns,
for each name, the stricter (higher) of the wideband and narrowband thresholds, so one number per name holds
on both channels; ``operating_points(narrowband=...)`` gives the per-channel values.

A tenant may override them; these are the defaults measured on held-out-from-evaluation readers.
"""

from __future__ import annotations

from pathlib import Path

from voiceauth.errors import ConfigError
from voiceauth.scoring.shipped import COHORT_DIR, load_backend_json

__all__ = ["TARGET_FAR", "default_operating_points", "operating_points"]

#: named operating points -> target false-accept rate
TARGET_FAR: dict[str, float] = {"high_security": 0.001, "balanced": 0.005, "convenience": 0.01}


def operating_points(narrowband: bool | None = None, folder: Path = COHORT_DIR) -> dict[str, float]:
    """Thresholds (0-100) per name; ``narrowband=None`` = the stricter of both channels."""
    spec = load_backend_json(folder)
    channels = spec["channels"]
    if narrowband is None:
        names = channels["wideband"]["operating_points"].keys()
        return {
            n: max(channels["wideband"]["operating_points"][n], channels["narrowband"]["operating_points"][n])
            for n in names
        }
    points: dict[str, float] = dict(channels["narrowband" if narrowband else "wideband"]["operating_points"])
    return points


def default_operating_points() -> dict[str, float]:
    """The shipped named thresholds (at least ``high_security`` = FAR 0.1%, ``convenience`` = FAR 1%)."""
    points = operating_points()
    missing = {"high_security", "convenience"} - set(points)
    if missing:
        raise ConfigError(f"shipped backend.json lacks operating points {sorted(missing)}; rebuild the cohort")
    return points
