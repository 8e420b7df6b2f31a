"""The calibration statistics against cases worked out by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voiceauth.calibration.stats import (
    CalibrationError,
    Trials,
    analyze,
    error_rates,
    iso_min_trials,
    rule_of_three,
    speaker_bootstrap,
)
from voiceauth.calibration.trials import read_trial_list
from voiceauth.scoring.metrics import det_curve, eer, min_dcf

# Four target and four impostor scores. Accept when score >= threshold. Worked by hand:
#   thr  P_miss (targets below)  P_fa (impostors at or above)
#   1    0                       4/4
#   3    0                       2/4   (4, 7)
#   4    1/4  (3)                2/4
#   5    1/4                     1/4   (7)      <- P_miss == P_fa: EER = 25%
#   6    2/4  (3, 5)             1/4
#   8    3/4                     0
#   inf  1                       0
TAR = [3.0, 5.0, 6.0, 8.0]
NON = [1.0, 2.0, 4.0, 7.0]


def test_eer_hand_case() -> None:
    assert eer(TAR, NON) == pytest.approx(0.25)


def test_min_dcf_hand_case() -> None:
    # p_target 0.5, unit costs: cost/default = P_miss + P_fa, smallest at thr 3 or 5: 0 + 1/2 = 1/4 + 1/4 = 0.5
    assert min_dcf(TAR, NON, p_target=0.5) == pytest.approx(0.5)
    # p_target 0.01: cost/default = P_miss + 99 P_fa; any false accept costs >= 99/4, so thr 8: 3/4 + 0 = 0.75
    assert min_dcf(TAR, NON, p_target=0.01) == pytest.approx(0.75)


def _trials(tar: list[float], non: list[float]) -> Trials:
    """Target trials of speaker a, impostor trials a -> b."""
    return Trials.build(tar + non, ["a"] * (len(tar) + len(non)), ["a"] * len(tar) + ["b"] * len(non))


def test_error_rates_match_the_hand_table_and_the_det_curve() -> None:
    t = _trials(TAR, NON)
    far, frr, fa, fr = error_rates(t, [1, 3, 4, 5, 6, 8])
    assert far.tolist() == [1.0, 0.5, 0.5, 0.25, 0.25, 0.0]
    assert frr.tolist() == [0.0, 0.0, 0.25, 0.25, 0.5, 0.75]
    assert fa.tolist() == [4, 2, 2, 1, 1, 0] and fr.tolist() == [0, 0, 1, 1, 2, 3]
    thr, pm, pfa = det_curve(TAR, NON)
    far2, frr2, _, _ = error_rates(t, thr)
    np.testing.assert_allclose(far2, pfa)
    np.testing.assert_allclose(frr2, pm)


def test_rule_of_three() -> None:
    assert rule_of_three(3000) == pytest.approx(0.001)
    assert rule_of_three(300) == pytest.approx(0.01)
    assert rule_of_three(2) == 1.0  # never above 1
    assert iso_min_trials(0.001) == 3000
    assert iso_min_trials(0.01) == 300
    with pytest.raises(CalibrationError, match="at least one trial"):
        rule_of_three(0)


def test_zero_false_accepts_use_the_rule_of_three_bound() -> None:
    rng = np.random.default_rng(1)
    spk = [f"s{i}" for i in range(6)]
    scores, e, p = [], [], []
    for a in spk:
        for b in spk:
            for _ in range(20):  # 120 target trials (60-80), 600 impostor trials (10-40): no overlap
                scores.append(rng.uniform(60, 80) if a == b else rng.uniform(10, 40))
                e.append(a)
                p.append(b)
    a = analyze(Trials.build(scores, e, p), target_far=0.01, thresholds=[50.0], replicates=200)
    point = a.points[0]
    assert point.false_accepts == 0 and point.far.value == 0.0
    assert point.far.method == "rule-of-3"
    assert (point.far.low, point.far.high) == (0.0, pytest.approx(3 / 600))
    assert point.frr.method == "rule-of-3" and point.frr.high == pytest.approx(3 / 120)
    # 600 impostor trials support FAR 0.01 (needs 300) but not 0.001 (needs 3000)
    assert not any("ISO/IEC 19795-1" in w for w in a.warnings)
    b = analyze(Trials.build(scores, e, p), target_far=0.001, thresholds=[50.0], replicates=200)
    assert b.min_impostor_trials == 3000
    assert any("ISO/IEC 19795-1" in w and "3000" in w for w in b.warnings)


def test_bootstrap_ci_collapses_when_every_speaker_has_the_same_rate() -> None:
    # 5 speakers, each with 4 target trials of which exactly one (score 10) falls below threshold 50:
    # every bootstrap replicate has FRR = 1/4 exactly, so the 95% interval is [0.25, 0.25].
    spk = [f"s{i}" for i in range(5)]
    scores, e, p = [], [], []
    for s in spk:
        for v in (10.0, 60.0, 70.0, 80.0):
            scores.append(v)
            e.append(s)
            p.append(s)
    for a_ in spk:
        for b_ in spk:
            if a_ != b_:
                scores.append(55.0 if (a_, b_) == ("s0", "s1") else 20.0)
                e.append(a_)
                p.append(b_)
    a = analyze(Trials.build(scores, e, p), target_far=0.1, thresholds=[50.0], replicates=500)
    point = a.points[0]
    assert point.frr.value == 0.25
    assert point.frr.method == "bootstrap"
    assert (point.frr.low, point.frr.high) == (pytest.approx(0.25), pytest.approx(0.25))
    assert point.false_accepts == 1 and point.far.value == pytest.approx(1 / 20)
    assert point.far.low <= point.far.value <= point.far.high


def test_bootstrap_two_speakers_hand_distribution() -> None:
    # Speaker a misses all 10 targets at threshold 50, b misses none. Drawing 2 speakers with replacement gives
    # {a,a} (p 1/4): FRR 1, {a,b} (p 1/2): FRR 0.5, {b,b} (p 1/4): FRR 0. The 95% interval is therefore [0, 1].
    scores = [10.0] * 10 + [90.0] * 10 + [20.0] * 5 + [20.0] * 5
    e = ["a"] * 10 + ["b"] * 10 + ["a"] * 5 + ["b"] * 5
    p = ["a"] * 10 + ["b"] * 10 + ["b"] * 5 + ["a"] * 5
    t = Trials.build(scores, e, p)
    far_b, frr_b = speaker_bootstrap(t, [50.0], replicates=4000, seed=3)
    values, counts = np.unique(frr_b[:, 0], return_counts=True)
    assert values.tolist() == [0.0, 0.5, 1.0]
    np.testing.assert_allclose(counts / counts.sum(), [0.25, 0.5, 0.25], atol=0.03)
    # impostor trials exist only when both speakers are drawn: FAR is NaN (no impostor trial) in ~half the draws
    assert np.isnan(far_b[:, 0]).mean() == pytest.approx(0.5, abs=0.03)
    point = analyze(t, target_far=0.1, thresholds=[50.0], replicates=4000).points[0]
    assert (point.frr.low, point.frr.value, point.frr.high) == (0.0, 0.5, 1.0)


def test_threshold_meeting_the_target_far() -> None:
    # 1000 impostor scores 0..999 (one speaker pair), FAR 1% -> at most 10 accepted: threshold just above 989
    non = [float(x) for x in range(1000)]
    tar = [995.0, 985.0, 999.5, 1000.0]
    a = analyze(_trials(tar, non), target_far=0.01, thresholds=[500.0], replicates=100)
    assert 989.0 < a.threshold <= 990.0
    assert a.at_threshold.false_accepts == 10 and a.at_threshold.far.value == pytest.approx(0.01)
    assert a.at_threshold.false_rejects == 1  # 985 is below the threshold
    assert a.at_threshold.frr.value == pytest.approx(0.25)


def test_trials_need_both_kinds() -> None:
    with pytest.raises(CalibrationError, match="both target and non-target"):
        Trials.build([1.0, 2.0], ["a", "a"], ["a", "a"])
    with pytest.raises(CalibrationError, match="NaN"):
        Trials.build([1.0, float("nan")], ["a", "a"], ["a", "b"])


def test_trial_list(tmp_path: Path) -> None:
    for spk in ("ann", "bob"):
        (tmp_path / spk).mkdir()
        for i in range(2):
            (tmp_path / spk / f"{i}.wav").write_bytes(b"")
    lst = tmp_path / "trials.txt"
    lst.write_text("# comment\ntarget ann/0.wav ann/1.wav\nnontarget ann/0.wav bob/1.wav\n\n1 bob/0.wav bob/1.wav\n")
    files, pairs = read_trial_list(lst)
    assert [s for s, _ in files] == ["ann", "ann", "bob", "bob"]
    assert pairs == [(0, 1), (0, 2), (3, 2)]
    lst.write_text("target ann/0.wav bob/1.wav\n")
    with pytest.raises(CalibrationError, match="disagrees"):
        read_trial_list(lst)
    lst.write_text("maybe ann/0.wav bob/1.wav\n")
    with pytest.raises(CalibrationError, match="is not a trial"):
        read_trial_list(lst)
