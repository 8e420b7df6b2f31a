"""The guard caps normalised scores at what the cohort-centred cosine supports on the cohort."""

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
    centred = float(scorer.narrowband.centred_matrix(a, b)[0, 0])
    assert res.calibrated <= float(scorer.narrowband.guard(centred)) + 1e-9
    mean = scorer.narrowband.preprocessor.mean
    assert mean is not None  # the guard reads the cosine after subtracting the cohort mean, not the raw cosine
    ua, ub = a / np.linalg.norm(a) - mean, b / np.linalg.norm(b) - mean
    assert abs(centred - float(ua @ ub / np.linalg.norm(ua) / np.linalg.norm(ub))) < 1e-9


def test_guard_knots_on_centred_cohort() -> None:
    rng = np.random.default_rng(2)
    cohort = rng.normal(size=(40, 8)) + 3.0  # a shared offset the centring removes
    readers = np.repeat(np.arange(20), 2)
    mean = (cohort / np.linalg.norm(cohort, axis=1, keepdims=True)).mean(axis=0)
    raw = cosine_guard(cohort, readers, {"p": 60.0}, {"p": 0.01})
    centred = cosine_guard(cohort, readers, {"p": 60.0}, {"p": 0.01}, mean=mean)
    assert raw.cosines[1] > 0.9 and centred.cosines[1] < 0.9  # the offset inflates raw cosines only
