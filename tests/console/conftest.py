"""Console fixtures: a published calibration report built from synthetic trials (the statistics are tested in
tests/calibration; here the report is only data for the console to show)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from voiceauth.calibration.report import build_report
from voiceauth.calibration.stats import Trials
from voiceauth.cli.calibrate import console_payload


def synthetic_trials(n_speakers: int = 12, per_pair: int = 4, seed: int = 5) -> Trials:
    """Genuine scores ~ N(75, 8), impostor ~ N(40, 10) on the 0-100 scale, clipped."""
    rng = np.random.default_rng(seed)
    spk = [f"s{i:02d}" for i in range(n_speakers)]
    scores, enrol, probe = [], [], []
    for a in spk:
        for b in spk:
            for _ in range(per_pair):
                scores.append(float(np.clip(rng.normal(75, 8) if a == b else rng.normal(40, 10), 0, 100)))
                enrol.append(a)
                probe.append(b)
    return Trials.build(scores, enrol, probe)


@pytest.fixture(scope="session")
def calibration_payload() -> dict[str, Any]:
    trials = synthetic_trials()
    report = build_report(trials, target_far=0.01, source="synthetic", scoring_backend="cosine", replicates=200)
    return console_payload(report, trials)
