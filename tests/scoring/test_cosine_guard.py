"""The raw-cosine guard caps normalised scores at what raw cosine supports on the cohort."""

from __future__ import annotations

import numpy as np

from voiceauth.scoring.backend import CosineGuard
from voiceauth.scoring.shipped import cosine_guard, load_cohort_scorer


def test_guard_knots_follow_cohort_impostor_quantiles() -> None:
    rng = np.random.default_rng(0)
    cohort = rng.normal(size=(60, 16))
    readers = np.repeat(np.arange(30), 2)
    guard = cosine_guard(cohort, readers, {"strict": 70.0, "loose": 55.0}, {"strict": 0.01, "loose": 0.1})
    unit = cohort / np.linalg.norm(cohort, axis=1, keepdims=True)
    sims = unit @ unit.T
    iu = np.triu_indices(60, 1)
    imp = sims[iu][readers[iu[0]] != readers[iu[1]]]
    assert guard.cosines[0] == -1.0 and guard.cosines[-1] == 1.0
    assert guard.scores == (0.0, 55.0, 70.0, 100.0)
    assert abs(guard.cosines[1] - np.quantile(imp, 0.9)) < 1e-12
    assert abs(guard.cosines[2] - np.quantile(imp, 0.99)) < 1e-12
    # a trial below the strict knot's cosine can never reach the strict threshold
    assert float(guard(guard.cosines[2] - 1e-6)) < 70.0
    assert float(guard(1.0)) == 100.0


def test_guard_is_monotone() -> None:
    g = CosineGuard(cosines=(-1.0, 0.4, 0.5, 1.0), scores=(0.0, 55.0, 67.0, 100.0))
    xs = np.linspace(-1, 1, 101)
    assert np.all(np.diff(g(xs)) >= 0)


def test_shipped_narrowband_scorer_is_guarded() -> None:
    scorer = load_cohort_scorer()
    assert scorer.narrowband.guard is not None  # centring + AS-norm -> guarded
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=192), rng.normal(size=192)
    res = scorer.score(a.astype(np.float32), b.astype(np.float32), narrowband=True, probe_speech_s=3.0)
    assert res.calibrated <= float(scorer.narrowband.guard(res.raw_cosine)) + 1e-9
