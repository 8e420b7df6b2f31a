"""Scoring: similarity, normalisation, calibration, decisions and metrics."""
