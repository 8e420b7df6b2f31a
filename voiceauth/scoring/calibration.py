"""Score calibration: normalised score -> log-likelihood ratio -> the 0-100 scale shown to tenants.

The back end's normalised score ``s`` is mapped to a natural-log likelihood ratio ``llr = a * s + b`` by
prior-weighted logistic regression (Platt scaling / linear calibration as in Brummer's FoCal), fitted on
target and non-target trials of the cohort half of the readers (never on evaluation readers). The shown score is

    calibrated = clip(50 + 10 * log10(LR), 0, 100) = clip(50 + 10 * llr / ln(10), 0, 100)

so 50 means "as likely the claimed speaker as not", every +10 points is ten times more evidence for the claimed
speaker (60 = 10:1, 70 = 100:1), and -10 points ten times more against. The meaning is the same for every
tenant and channel because each channel has its own ``a, b``.

Duration (a quality-measure function, as WeSpeaker's QMF): ``llr = a * s + b + c * q(d)`` with
``q(d) = ln(min(max(d, 0.5), cap) / cap)`` of the probe's net speech ``d`` (0 from ``cap`` seconds up). ``c`` is
fitted by :func:`fit_duration_term` so that the non-target score tails of short and long probes line up: a
calibrated 58.9 means the same false-accept rate for a 2 s answer as for a 10 s one, and one threshold per
operating point holds its false-accept rate at every duration. Pure numpy; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from voiceauth.scoring.metrics import MetricsError

__all__ = ["Calibration", "duration_quality", "fit_calibration", "fit_duration_term", "llr_to_scale"]

_LN10 = math.log(10.0)
QMF_CAP_S = 4.0  # probes with at least this much net speech get no duration term
_QMF_FLOOR_S = 0.5


def duration_quality(speech_s: npt.ArrayLike, cap_s: float = QMF_CAP_S) -> npt.NDArray[np.float64]:
    """The quality measure of a probe's net speech: ``ln(min(max(d, 0.5), cap) / cap)`` (<= 0; 0 at >= cap)."""
    d = np.clip(np.asarray(speech_s, dtype=np.float64), _QMF_FLOOR_S, cap_s)
    out: npt.NDArray[np.float64] = np.log(d / cap_s)
    return out


def llr_to_scale(llr: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Natural-log likelihood ratio -> 0-100 (50 = even odds, +10 per factor of ten)."""
    out: npt.NDArray[np.float64] = np.clip(50.0 + 10.0 * np.asarray(llr, dtype=np.float64) / _LN10, 0.0, 100.0)
    return out


@dataclass(frozen=True)
class Calibration:
    a: float  # slope: llr per unit of normalised score
    b: float  # offset
    c: float = 0.0  # llr per unit of duration_quality(probe net speech); 0 = duration-blind
    cap_s: float = QMF_CAP_S

    def llr(self, normalized: npt.ArrayLike, probe_s: npt.ArrayLike | None = None) -> npt.NDArray[np.float64]:
        """``a * s + b`` (+ ``c * q(probe_s)`` when the probe's net speech is given)."""
        out: npt.NDArray[np.float64] = self.a * np.asarray(normalized, dtype=np.float64) + self.b
        if probe_s is not None and self.c != 0.0:
            out = out + self.c * duration_quality(probe_s, self.cap_s)
        return out

    def scale(self, normalized: npt.ArrayLike, probe_s: npt.ArrayLike | None = None) -> npt.NDArray[np.float64]:
        return llr_to_scale(self.llr(normalized, probe_s))

    def __call__(self, normalized: float, probe_s: float | None = None) -> float:
        return float(self.scale(normalized, probe_s))


def fit_calibration(tar: npt.ArrayLike, non: npt.ArrayLike, p_target: float = 0.5, iterations: int = 50) -> Calibration:
    """Prior-weighted logistic regression of target vs non-target scores (Newton's method, 2 parameters).

    Each class gets total weight ``p_target`` / ``1 - p_target`` whatever its trial count, and the prior
    log-odds are removed from the offset, so ``a * s + b`` is a log-likelihood ratio.
    """
    t = np.asarray(tar, dtype=np.float64).ravel()
    n = np.asarray(non, dtype=np.float64).ravel()
    if t.size == 0 or n.size == 0:
        raise MetricsError(f"calibration needs target and non-target scores, got {t.size} and {n.size}")
    x = np.concatenate([t, n])
    y = np.concatenate([np.ones(t.size), np.zeros(n.size)])
    w = np.concatenate([np.full(t.size, p_target / t.size), np.full(n.size, (1 - p_target) / n.size)])
    logit_prior = math.log(p_target / (1 - p_target))
    X = np.stack([x, np.ones_like(x)], axis=1)
    theta = np.zeros(2)
    for _ in range(iterations):
        z = X @ theta + logit_prior
        p = 1.0 / (1.0 + np.exp(-z))
        grad = X.T @ (w * (p - y)) + 1e-6 * theta
        hess = (X * (w * p * (1 - p))[:, None]).T @ X + 1e-6 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if float(np.max(np.abs(step))) < 1e-10:
            break
    return Calibration(a=float(theta[0]), b=float(theta[1]))


def fit_duration_term(
    calibration: Calibration,
    buckets: Sequence[tuple[npt.ArrayLike, npt.ArrayLike]],
    target_fars: Sequence[float],
    grid: npt.ArrayLike | None = None,
) -> Calibration:
    """``calibration`` with the duration term ``c`` that best lines up the non-target tails of the buckets.

    ``buckets``: per probe duration (e.g. full answers, 3 s and 2 s crops) the non-target normalised scores and
    their probes' net speech. For each candidate ``c`` (a grid over [-3, 3]) the calibrated threshold at every
    target false-accept rate is measured in every bucket; the ``c`` with the smallest summed spread (max - min
    over buckets) wins, ties to the smallest ``|c|``. Matching false-accept tails (not a likelihood fit) is the
    aim: a likelihood fit raises short probes' scores where their targets are weaker, which moves their
    false-accept rate away from the long probes' one.
    """
    from voiceauth.scoring.metrics import threshold_at_far

    if not buckets:
        raise MetricsError("fitting the duration term needs at least one bucket of non-target scores")
    values = np.linspace(-3.0, 3.0, 121) if grid is None else np.asarray(grid, dtype=np.float64)
    best: tuple[float, float] | None = None
    for c in sorted(values.tolist(), key=abs):
        cand = Calibration(calibration.a, calibration.b, c, calibration.cap_s)
        spread = 0.0
        for far in target_fars:
            thr = [threshold_at_far(cand.scale(n, d), far) for n, d in buckets]
            spread += max(thr) - min(thr)
        if best is None or spread < best[0] - 1e-9:
            best = (spread, c)
    assert best is not None
    return Calibration(calibration.a, calibration.b, best[1], calibration.cap_s)
