"""Enrolment: text-independent, utterance by utterance, with consent, quality feedback and anti-poisoning."""

from __future__ import annotations

from enrollment.policy import ENROLLMENT_CODES, EnrollmentPolicy, combine_embeddings, progress_percent
from enrollment.session import Enroller, EnrollmentResult

__all__ = [
    "ENROLLMENT_CODES",
    "Enroller",
    "EnrollmentPolicy",
    "EnrollmentResult",
    "combine_embeddings",
    "progress_percent",
]
