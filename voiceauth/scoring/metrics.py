"""Detection metrics for verification trials: EER, normalised minDCF, and threshold at a target FAR.

Conventions: a trial is accepted when ``score >= threshold``. Rates are computed at every distinct score
(ties move together), plus +inf where everything is rejected. Pure numpy; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from voiceauth.errors import VoiceAuthError

__all__ = ["MetricsError", "det_curve", "eer", "min_dcf", "threshold_at_far"]

ArrayLike = Sequence[float] | npt.NDArray[np.floating]


class MetricsError(VoiceAuthError):
    code = "metrics-error"


def _check(tar: ArrayLike, non: ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    t = np.asarray(tar, dtype=np.float64).ravel()
    n = np.asarray(non, dtype=np.float64).ravel()
    if t.size == 0 or n.size == 0:
        raise MetricsError(f"need at least one target and one non-target score, got {t.size} and {n.size}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(n))):
        raise MetricsError("scores contain NaN or Inf; only finite scores are accepted")
    return t, n


def det_curve(
    tar: ArrayLike, non: ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(thresholds, P_miss, P_fa) at every distinct score and +inf; P_miss rises, P_fa falls."""
    t, n = _check(tar, non)
    thr = np.unique(np.concatenate([t, n]))
    t_sorted = np.sort(t)
    n_sorted = np.sort(n)
    p_miss = np.searchsorted(t_sorted, thr, side="left") / t.size  # targets below threshold
    p_fa = 1.0 - np.searchsorted(n_sorted, thr, side="left") / n.size  # non-targets at or above
    thr = np.append(thr, np.inf)
    p_miss = np.append(p_miss, 1.0)
    p_fa = np.append(p_fa, 0.0)
    return thr, p_miss, p_fa


def eer(target_scores: ArrayLike, nontarget_scores: ArrayLike) -> float:
    """Equal error rate (fraction, 0-1): where P_miss crosses P_fa, linearly interpolated between points."""
    _, pm, pfa = det_curve(target_scores, nontarget_scores)
    diff = pm - pfa
    k = int(np.argmax(diff >= 0))  # first point where misses catch up with false accepts
    if k == 0:
        return float(pm[0])
    d0, d1 = diff[k - 1], diff[k]
    alpha = -d0 / (d1 - d0)
    return float(pm[k - 1] + alpha * (pm[k] - pm[k - 1]))


def min_dcf(
    tar: ArrayLike,
    non: ArrayLike,
    p_target: float = 0.01,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> float:
    """Minimum detection cost, normalised by the cost of the best trivial system (NIST SRE convention)."""
    if not 0.0 < p_target < 1.0:
        raise MetricsError(f"p_target={p_target} must be strictly between 0 and 1")
    if c_miss <= 0 or c_fa <= 0:
        raise MetricsError(f"costs must be positive, got c_miss={c_miss}, c_fa={c_fa}")
    _, pm, pfa = det_curve(tar, non)
    cost = c_miss * p_target * pm + c_fa * (1.0 - p_target) * pfa
    default = min(c_miss * p_target, c_fa * (1.0 - p_target))
    return float(np.min(cost) / default)


def threshold_at_far(nontarget_scores: ArrayLike, far: float) -> float:
    """Lowest threshold whose false-accept rate (share of non-targets >= threshold) is at most ``far``."""
    if not 0.0 < far < 1.0:
        raise MetricsError(f"target false-accept rate {far} must be strictly between 0 and 1")
    n = np.sort(np.asarray(nontarget_scores, dtype=np.float64).ravel())
    if n.size == 0:
        raise MetricsError("need at least one non-target score to choose a threshold")
    allowed = int(np.floor(far * n.size))  # how many non-targets may be accepted
    if allowed == 0:
        return float(np.nextafter(n[-1], np.inf))
    # accept the top `allowed` scores: threshold just above the score ranked `allowed + 1` from the top
    return float(np.nextafter(n[n.size - allowed - 1], np.inf))
