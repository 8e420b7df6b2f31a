"""Threshold calibration for security staff: error rates with confidence intervals, DET curves, reports."""

from __future__ import annotations

from voiceauth.calibration.report import Report, build_report, render_html, write_report
from voiceauth.calibration.stats import Analysis, CalibrationError, Trials, analyze, rule_of_three

__all__ = [
    "Analysis",
    "CalibrationError",
    "Report",
    "Trials",
    "analyze",
    "build_report",
    "render_html",
    "rule_of_three",
    "write_report",
]
