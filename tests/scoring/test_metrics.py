"""EER, minDCF and FAR thresholds against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from voiceauth.scoring.metrics import MetricsError, det_curve, eer, min_dcf, threshold_at_far


def test_eer_hand_computed_crossing_at_a_point() -> None:
    # thresholds 0.1 .. 0.9: at t=0.5 one target (0.3) is missed and one impostor (0.5) accepted: 1/3 each
    assert eer([0.9, 0.8, 0.3], [0.5, 0.2, 0.1]) == pytest.approx(1 / 3)


def test_eer_hand_computed_interpolated() -> None:
    # tar [2, 4], non [1, 3]: t=3 -> P_miss 1/2, P_fa 1/2 -> EER 0.5
    assert eer([2.0, 4.0], [1.0, 3.0]) == pytest.approx(0.5)
    # tar [3, 4, 5, 6], non [1, 2, 3.5]: t=3 -> miss 0, fa 1/3; t=3.5 -> miss 1/4, fa 1/3; t=4 -> miss 1/4, fa 0
    # crossing between (0, 1/3) and (1/4, 1/3): diff goes -1/3 -> -1/12 -> +1/4: between t=3.5 and t=4,
    # points (1/4, 1/3) and (1/4, 0): P_miss stays 1/4 there, so EER = 1/4
    assert eer([3.0, 4.0, 5.0, 6.0], [1.0, 2.0, 3.5]) == pytest.approx(0.25)


def test_eer_extremes() -> None:
    assert eer([1.0, 2.0], [0.0]) == 0.0
    assert eer([0.0], [1.0, 2.0]) == 1.0


def test_eer_ties_move_together() -> None:
    # all scores equal: accepting everything gives P_fa 1, rejecting everything P_miss 1 -> 0.5
    assert eer([1.0, 1.0], [1.0, 1.0]) == pytest.approx(0.5)


def test_det_curve_monotone() -> None:
    rng = np.random.default_rng(0)
    _, pm, pfa = det_curve(rng.normal(1, 1, 200), rng.normal(0, 1, 300))
    assert np.all(np.diff(pm) >= 0) and np.all(np.diff(pfa) <= 0)
    assert (pm[0], pfa[0], pm[-1], pfa[-1]) == (0.0, 1.0, 1.0, 0.0)


def test_min_dcf_hand_computed() -> None:
    # p_target 0.01: best threshold 0.8 misses 1/3 targets, accepts no impostor: cost 0.01/3, default 0.01
    assert min_dcf([0.9, 0.8, 0.3], [0.5, 0.2, 0.1], p_target=0.01) == pytest.approx(1 / 3)
    # p_target 0.5: threshold 0.8 -> 0.5 * 1/3 = 1/6, threshold 0.3 -> 0.5 * 1/3 = 1/6; default 0.5 -> 1/3
    assert min_dcf([0.9, 0.8, 0.3], [0.5, 0.2, 0.1], p_target=0.5) == pytest.approx(1 / 3)
    # perfect separation costs nothing; costs weight the terms
    assert min_dcf([2.0], [1.0]) == 0.0
    assert min_dcf([0.9, 0.8, 0.3], [0.5, 0.2, 0.1], p_target=0.5, c_miss=1, c_fa=10) == pytest.approx(
        (0.5 * 1 / 3) / 0.5
    )


def test_threshold_at_far() -> None:
    non = np.arange(1000, dtype=float)
    t = threshold_at_far(non, 0.01)
    assert np.mean(non >= t) == pytest.approx(0.01)
    assert 989 < t <= 990
    assert threshold_at_far([1.0, 2.0, 3.0], 0.001) > 3.0  # fewer than one allowed: above every impostor


@pytest.mark.parametrize(("tar", "non"), [([], [1.0]), ([1.0], []), ([float("nan")], [1.0]), ([1.0], [float("inf")])])
def test_bad_scores_refused(tar: list[float], non: list[float]) -> None:
    with pytest.raises(MetricsError):
        eer(tar, non)


def test_bad_parameters_refused() -> None:
    with pytest.raises(MetricsError, match="p_target"):
        min_dcf([1.0], [0.0], p_target=1.5)
    with pytest.raises(MetricsError, match="false-accept"):
        threshold_at_far([0.0], 0.0)
