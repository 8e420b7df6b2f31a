"""Error rates with honest error bars: FAR/FRR per threshold, bootstrap over speakers, the rule of 3.

Trials are (score, speaker of the enrolment side, speaker of the probe side); a trial is a target when both are
the same speaker and it is accepted when ``score >= threshold`` (as in :mod:`voiceauth.scoring.metrics`).

Confidence intervals (95%) resample *speakers*, not trials, because trials of one speaker are not independent
(the "subsets bootstrap" of Bolle, Ratha & Pankanti): each replicate draws the speakers with replacement; a
target trial of speaker ``s`` counts ``m_s`` times and a non-target trial of speakers ``a, b`` counts
``m_a * m_b`` times, where ``m`` is how often each speaker was drawn. The interval is the 2.5-97.5 percentile of
the replicates. When no error is observed at a threshold the bootstrap can only say 0, so the upper bound is the
rule of 3 instead (``3 / n``: with ``n`` independent trials and zero errors the true rate is below ``3 / n`` with
95% confidence). ISO/IEC 19795-1 therefore asks for at least ``3 / target`` trials to claim a target error rate;
:func:`analyze` warns when there are fewer impostor trials than that. Pure numpy; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from voiceauth.errors import VoiceAuthError
from voiceauth.scoring.metrics import eer, min_dcf, threshold_at_far

__all__ = [
    "Analysis",
    "CalibrationError",
    "Interval",
    "RatePoint",
    "Trials",
    "analyze",
    "error_rates",
    "iso_min_trials",
    "rule_of_three",
    "speaker_bootstrap",
]

F64 = npt.NDArray[np.float64]

#: confidence level of every interval reported here
CONFIDENCE = 0.95


class CalibrationError(VoiceAuthError):
    code = "calibration-error"


@dataclass(frozen=True)
class Trials:
    """Scored trials: ``scores[i]`` compares a file of speaker ``enrol[i]`` with one of speaker ``probe[i]``."""

    scores: F64
    enrol: npt.NDArray[np.int64]  # speaker index of the enrolment side
    probe: npt.NDArray[np.int64]  # speaker index of the probe side
    speakers: tuple[str, ...]  # index -> speaker name

    @classmethod
    def build(cls, scores: Sequence[float] | F64, enrol: Sequence[str], probe: Sequence[str]) -> Trials:
        s = np.asarray(scores, dtype=np.float64).ravel()
        if not (s.size == len(enrol) == len(probe)):
            raise CalibrationError(f"{s.size} scores but {len(enrol)} enrol and {len(probe)} probe speaker labels")
        if not np.all(np.isfinite(s)):
            raise CalibrationError("scores contain NaN or Inf; only finite scores are accepted")
        names = tuple(sorted(set(enrol) | set(probe)))
        index = {n: i for i, n in enumerate(names)}
        e = np.array([index[x] for x in enrol], dtype=np.int64)
        p = np.array([index[x] for x in probe], dtype=np.int64)
        t = cls(s, e, p, names)
        if t.target.sum() == 0 or (~t.target).sum() == 0:
            raise CalibrationError(
                f"need both target and non-target trials, got {int(t.target.sum())} and {int((~t.target).sum())}: "
                "use at least two speakers, one with two or more files"
            )
        return t

    @property
    def target(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.enrol == self.probe)

    @property
    def tar(self) -> F64:
        return self.scores[self.target]

    @property
    def non(self) -> F64:
        return self.scores[~self.target]


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float
    method: str  # "bootstrap" | "rule-of-3"


@dataclass(frozen=True)
class RatePoint:
    threshold: float
    far: Interval
    frr: Interval
    false_accepts: int
    false_rejects: int


@dataclass
class Analysis:
    target_trials: int
    nontarget_trials: int
    speakers: int
    eer: float
    min_dcf: dict[str, float]
    target_far: float
    threshold: float  # lowest threshold with observed FAR <= target_far
    at_threshold: RatePoint
    points: list[RatePoint]
    bootstrap_replicates: int
    min_impostor_trials: int  # ISO/IEC 19795-1: 3 / target_far
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rule_of_three(n: int) -> float:
    """95% upper bound of an error rate when ``n`` independent trials showed no error (``3 / n``, at most 1)."""
    if n <= 0:
        raise CalibrationError(f"rule of 3 needs at least one trial, got {n}")
    return min(1.0, 3.0 / n)


def iso_min_trials(target_rate: float) -> int:
    """Trials needed to support ``target_rate`` with zero observed errors (ISO/IEC 19795-1 rule of 3)."""
    if not 0.0 < target_rate < 1.0:
        raise CalibrationError(f"target error rate {target_rate} must be strictly between 0 and 1")
    return int(np.ceil(3.0 / target_rate - 1e-9))


def error_rates(
    trials: Trials, thresholds: npt.ArrayLike
) -> tuple[F64, F64, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(FAR, FRR, false-accept counts, false-reject counts) at each threshold (accept when score >= threshold)."""
    thr = np.asarray(thresholds, dtype=np.float64).ravel()
    tar = np.sort(trials.tar)
    non = np.sort(trials.non)
    fr = np.searchsorted(tar, thr, side="left").astype(np.int64)
    fa = (non.size - np.searchsorted(non, thr, side="left")).astype(np.int64)
    return fa / non.size, fr / tar.size, fa, fr


def _accepts_by_group(scores: F64, group: npt.NDArray[np.int64], n_groups: int, thr: F64) -> F64:
    """[G, K] how many trials of each group score >= each threshold (a histogram, not a [T, K] matrix)."""
    order = np.argsort(thr, kind="stable")
    below = np.searchsorted(thr[order], scores, side="right")  # thresholds (sorted) at or below each score
    hist = np.zeros((n_groups, thr.size + 1))
    np.add.at(hist, (group, below), 1.0)
    tail = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]  # tail[:, k] = trials with below >= k
    out = np.empty((n_groups, thr.size))
    out[:, order] = tail[:, 1:]  # accepted at sorted threshold k  <=>  below > k
    return out


def speaker_bootstrap(
    trials: Trials, thresholds: npt.ArrayLike, replicates: int = 1000, seed: int = 0, chunk: int = 64
) -> tuple[F64, F64]:
    """Bootstrap replicates over speakers -> (FAR [B, K], FRR [B, K]); NaN where a replicate has no such trial.

    Trials are first counted per speaker (targets) and per observed speaker pair (impostors), so the cost is
    replicates x pairs x thresholds whatever the number of trials; replicates are processed ``chunk`` at a time.
    """
    thr = np.asarray(thresholds, dtype=np.float64).ravel()
    n_spk = len(trials.speakers)
    tgt = trials.target
    n_t = np.bincount(trials.enrol[tgt], minlength=n_spk).astype(np.float64)
    miss = n_t[:, None] - _accepts_by_group(trials.scores[tgt], trials.enrol[tgt], n_spk, thr)
    pairs, pair_of = np.unique(trials.enrol[~tgt] * n_spk + trials.probe[~tgt], return_inverse=True)
    pa, pb = pairs // n_spk, pairs % n_spk
    n_n = np.bincount(pair_of, minlength=pairs.size).astype(np.float64)
    fa = _accepts_by_group(trials.scores[~tgt], pair_of.astype(np.int64), pairs.size, thr)
    rng = np.random.default_rng(seed)
    far = np.empty((replicates, thr.size))
    frr = np.empty((replicates, thr.size))
    for lo in range(0, replicates, chunk):
        b = min(chunk, replicates - lo)
        m = np.stack([np.bincount(rng.integers(0, n_spk, n_spk), minlength=n_spk) for _ in range(b)]).astype(
            np.float64
        )  # [b, S] how often each speaker was drawn
        w = m[:, pa] * m[:, pb]  # [b, P] weight of each impostor pair
        with np.errstate(invalid="ignore", divide="ignore"):
            frr[lo : lo + b] = (m @ miss) / (m @ n_t)[:, None]
            far[lo : lo + b] = (w @ fa) / (w @ n_n)[:, None]
    return far, frr


def _interval(value: float, reps: F64, errors: int, n: int) -> Interval:
    if errors == 0:
        return Interval(value, 0.0, rule_of_three(n), "rule-of-3")
    finite = reps[np.isfinite(reps)]
    if finite.size == 0:
        return Interval(value, value, value, "bootstrap")
    alpha = (1.0 - CONFIDENCE) / 2.0
    lo, hi = np.quantile(finite, [alpha, 1.0 - alpha])
    return Interval(value, float(min(lo, value)), float(max(hi, value)), "bootstrap")


def analyze(
    trials: Trials,
    target_far: float = 0.001,
    thresholds: npt.ArrayLike | None = None,
    replicates: int = 1000,
    seed: int = 0,
) -> Analysis:
    """EER, minDCF (p_target 0.01 and 0.001), FAR/FRR with 95% CIs per threshold, the threshold at ``target_far``."""
    tar, non = trials.tar, trials.non
    thr_target = threshold_at_far(non, target_far)
    grid = np.arange(0.0, 100.0 + 1e-9, 1.0) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    all_thr = np.append(grid, thr_target)
    far, frr, fa, fr = error_rates(trials, all_thr)
    far_b, frr_b = speaker_bootstrap(trials, all_thr, replicates=replicates, seed=seed)
    points = [
        RatePoint(
            threshold=float(all_thr[k]),
            far=_interval(float(far[k]), far_b[:, k], int(fa[k]), non.size),
            frr=_interval(float(frr[k]), frr_b[:, k], int(fr[k]), tar.size),
            false_accepts=int(fa[k]),
            false_rejects=int(fr[k]),
        )
        for k in range(all_thr.size)
    ]
    need = iso_min_trials(target_far)
    warnings: list[str] = []
    if non.size < need:
        warnings.append(
            f"only {non.size} impostor trials: ISO/IEC 19795-1 needs at least {need} (3 / {target_far:g}) with zero "
            f"false accepts to support a false-accept rate of {target_far:g}; the threshold is not supported by this "
            f"data (with no false accept the 95% upper bound is {rule_of_three(non.size):.4g})"
        )
    at = points[-1]
    if at.far.high > target_far:
        warnings.append(
            f"the 95% upper bound of the FAR at threshold {thr_target:.2f} is {at.far.high:.4g}, above the target "
            f"{target_far:g}"
        )
    if len(trials.speakers) < 10:
        warnings.append(f"only {len(trials.speakers)} speakers: speaker-bootstrap intervals are coarse")
    return Analysis(
        target_trials=int(tar.size),
        nontarget_trials=int(non.size),
        speakers=len(trials.speakers),
        eer=eer(tar, non),
        min_dcf={"0.01": min_dcf(tar, non, p_target=0.01), "0.001": min_dcf(tar, non, p_target=0.001)},
        target_far=target_far,
        threshold=float(thr_target),
        at_threshold=at,
        points=points[:-1],
        bootstrap_replicates=replicates,
        min_impostor_trials=need,
        warnings=warnings,
    )
