"""AS-norm, pre-processing and calibration math on small synthetic arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from voiceauth.errors import ConfigError
from voiceauth.scoring.backend import ChannelBackend, CohortScorer
from voiceauth.scoring.calibration import Calibration, fit_calibration, llr_to_scale
from voiceauth.scoring.normalization import Preprocessor, as_norm, cohort_stats, l2_normalize


def _unit(*v: float) -> np.ndarray:
    a = np.array(v, dtype=np.float64)
    return a / np.linalg.norm(a)


def test_cohort_stats_top_n_by_hand() -> None:
    cohort = np.stack([_unit(1, 0), _unit(0, 1), _unit(-1, 0), _unit(1, 1)])
    x = _unit(1, 0)[None, :]
    # cosines with x: 1, 0, -1, 0.7071; top-2 = {1, 0.7071}
    mu, sd = cohort_stats(x, cohort, top_n=2)
    top = np.array([1.0, math.sqrt(0.5)])
    assert mu[0] == pytest.approx(top.mean())
    assert sd[0] == pytest.approx(top.std())
    # top_n larger than the cohort uses the whole cohort
    mu_all, _ = cohort_stats(x, cohort, top_n=50)
    assert mu_all[0] == pytest.approx((1 + 0 - 1 + math.sqrt(0.5)) / 4)


def test_as_norm_formula() -> None:
    s = as_norm(0.6, (np.array(0.2), np.array(0.1)), (np.array(0.4), np.array(0.05)))
    assert float(s) == pytest.approx(0.5 * ((0.6 - 0.2) / 0.1 + (0.6 - 0.4) / 0.05))


def test_cohort_stats_needs_two() -> None:
    with pytest.raises(ConfigError, match="top_n"):
        cohort_stats(np.ones((1, 2)), np.ones((3, 2)), top_n=1)


def test_preprocessor_centres_and_normalises() -> None:
    mean = np.array([0.5, 0.0])
    pp = Preprocessor(mean=mean)
    out = pp(np.array([[2.0, 0.0], [0.0, 3.0]]))
    assert np.allclose(out[0], [1.0, 0.0])  # (1,0) - (0.5,0) -> (0.5,0) -> unit
    assert np.allclose(out[1], _unit(-0.5, 1.0))
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0)
    assert np.allclose(Preprocessor()(np.array([3.0, 4.0])), [0.6, 0.8])


def test_backend_score_matches_matrix_and_hand_computation() -> None:
    rng = np.random.default_rng(1)
    cohort = l2_normalize(rng.normal(size=(30, 8)))
    backend = ChannelBackend("t", Preprocessor(), cohort, top_n=5, calibration=Calibration(2.0, -1.0))
    scorer = CohortScorer(wideband=backend, narrowband=backend)
    e, p = rng.normal(size=8).astype(np.float32), rng.normal(size=8).astype(np.float32)
    got = scorer.score(e, p, narrowband=False, probe_speech_s=3.0)
    eu, pu = l2_normalize(e), l2_normalize(p)
    raw = float(eu @ pu)
    top_e = np.sort(cohort @ eu)[-5:]
    top_p = np.sort(cohort @ pu)[-5:]
    expect = 0.5 * ((raw - top_e.mean()) / top_e.std() + (raw - top_p.mean()) / top_p.std())
    assert got.raw_cosine == pytest.approx(raw, abs=1e-6)
    assert got.normalized == pytest.approx(expect)
    assert got.calibrated == pytest.approx(float(llr_to_scale(2.0 * expect - 1.0)))
    _, norm, cal = scorer.score_matrix(np.stack([e, p]), narrowband=False)
    assert norm[0, 1] == pytest.approx(got.normalized)
    assert cal[0, 1] == pytest.approx(got.calibrated)


def test_backend_without_as_norm_is_cosine() -> None:
    rng = np.random.default_rng(2)
    backend = ChannelBackend("t", Preprocessor(), l2_normalize(rng.normal(size=(4, 3))), None, Calibration(1, 0))
    e, p = rng.normal(size=3), rng.normal(size=3)
    assert backend.normalized_matrix(e, p)[0, 0] == pytest.approx(float(l2_normalize(e) @ l2_normalize(p)))


def test_scale_meaning() -> None:
    assert float(llr_to_scale(0.0)) == 50.0
    assert float(llr_to_scale(math.log(10))) == pytest.approx(60.0)
    assert float(llr_to_scale(-math.log(100))) == pytest.approx(30.0)
    assert float(llr_to_scale(1e6)) == 100.0 and float(llr_to_scale(-1e6)) == 0.0


def test_fit_calibration_recovers_gaussian_llr() -> None:
    # equal-variance Gaussians: llr(s) = (m1 - m0) / v * s - (m1^2 - m0^2) / (2 v)
    rng = np.random.default_rng(3)
    m1, m0, sd = 2.0, 0.0, 1.0
    cal = fit_calibration(rng.normal(m1, sd, 20000), rng.normal(m0, sd, 60000))
    assert cal.a == pytest.approx(2.0, abs=0.08)
    assert cal.b == pytest.approx(-2.0, abs=0.08)
    # an extra prior on the fit does not change the likelihood ratio
    cal2 = fit_calibration(rng.normal(m1, sd, 20000), rng.normal(m0, sd, 60000), p_target=0.1)
    assert cal2.a == pytest.approx(2.0, abs=0.1) and cal2.b == pytest.approx(-2.0, abs=0.1)


def test_wccn_whitens_within_speaker_variation() -> None:
    from voiceauth.scoring.normalization import wccn

    rng = np.random.default_rng(4)
    scales = np.array([3.0, 1.0, 0.2])
    centres = rng.normal(size=(40, 3)) * 5
    labels = np.repeat(np.arange(40), 25)
    x = centres[labels] + rng.normal(size=(1000, 3)) * scales
    b = wccn(x, labels, shrinkage=0.0)
    within = x - np.stack([x[labels == k].mean(axis=0) for k in range(40)])[labels]
    cov = (within @ b).T @ (within @ b) / (1000 - 40)
    assert np.allclose(cov, np.eye(3), atol=1e-6)
    # shrinkage pulls towards a scaled identity: the projection stays well conditioned
    b_shrunk = wccn(x, labels, shrinkage=0.5)
    assert np.linalg.cond(b_shrunk) < np.linalg.cond(b)


def test_lda_keeps_the_speaker_separating_direction() -> None:
    from voiceauth.scoring.normalization import lda

    rng = np.random.default_rng(5)
    # speakers differ only along axis 0; axes 1-2 carry large within-speaker noise
    centres = np.zeros((30, 3))
    centres[:, 0] = rng.normal(size=30) * 3
    labels = np.repeat(np.arange(30), 10)
    x = centres[labels] + rng.normal(size=(300, 3)) * np.array([0.3, 3.0, 3.0])
    w = lda(x, labels, 1)
    assert w.shape == (3, 1)
    direction = w[:, 0] / np.linalg.norm(w[:, 0])
    assert abs(direction[0]) > 0.99
    with pytest.raises(ConfigError, match="LDA dimension 30"):
        lda(x, labels, 30)  # at most speakers - 1


def test_candidate_back_ends_train_on_the_cohort_only() -> None:
    from voiceauth.scoring.candidates import CANDIDATES, Candidate, make_backend

    rng = np.random.default_rng(6)
    cohort = rng.normal(size=(120, 16))
    speakers = [str(k) for k in np.repeat(np.arange(40), 3)]
    names = {c.name for c in CANDIDATES}
    assert {"cosine", "centre+asnorm100", "centre+wccn", "centre+lda60+wccn+asnorm300"} <= names
    cand = Candidate(centre=True, top_n=50, wccn=True, lda_dim=8)
    backend = make_backend("t", cand, cohort, speakers)
    assert backend.preprocessor.projection is not None and backend.preprocessor.projection.shape == (16, 8)
    assert backend.preprocessor.mean is not None
    assert np.allclose(backend.preprocessor.mean, l2_normalize(cohort).mean(axis=0))
    scores = backend.normalized_matrix(cohort[:5], cohort[5:9])
    assert scores.shape == (5, 4) and np.all(np.isfinite(scores))
    plain = make_backend("t", Candidate(centre=False, top_n=None), cohort, speakers)
    assert np.allclose(
        plain.normalized_matrix(cohort[:3], cohort[3:5]), l2_normalize(cohort[:3]) @ l2_normalize(cohort[3:5]).T
    )
