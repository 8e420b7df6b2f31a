"""Build the production scorer from Settings."""

from __future__ import annotations

from voiceauth.config import Settings
from voiceauth.scoring.backend import CohortScorer
from voiceauth.scoring.base import CosineScorer, Scorer
from voiceauth.scoring.shipped import COHORT_DIR, load_cohort_scorer

__all__ = ["create_scorer"]


def create_scorer(settings: Settings) -> Scorer:
    """The production scorer: ``cohort`` (AS-norm + calibration, shipped files) unless settings say ``cosine``."""
    if settings.scoring_backend == "cosine":
        return CosineScorer()
    folder = settings.scoring_cohort_dir or COHORT_DIR
    scorer: CohortScorer = load_cohort_scorer(folder)
    return scorer
