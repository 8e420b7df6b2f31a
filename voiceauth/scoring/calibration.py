"""Score calibration: normalised score -> log-likelihood ratio -> the 0-100 scale shown to tenants.

The back end's normalised score ``s`` is mapped to a natural-log likelihood ratio ``llr = a * s + b`` by
prior-weighted logistic regression (Platt scaling / linear calibration as in Brummer's FoCal), fitted on
target and non-target trials of the cohort half of the readers (never on evaluation readers). The shown score is

    calibrated = clip(50 + 10 * log10(LR), 0, 100) = clip(50 + 10 * llr / ln(10), 0, 100)

so 50 means "as likely the claimed speaker as not", every +10 points is ten times more evidence for the claimed
speaker (60 = 10:1, 70 = 100:1), and -10 points ten times more against. The meaning is the same for every
tenant and channel because each channel has its own ``a, b``. Pure numpy; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from voiceauth.scoring.metrics import MetricsError

__all__ = ["Calibration", "fit_calibration", "llr_to_scale"]

_LN10 = math.log(10.0)


def llr_to_scale(llr: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Natural-log likelihood ratio -> 0-100 (50 = even odds, +10 per factor of ten)."""
    out: npt.NDArray[np.float64] = np.clip(50.0 + 10.0 * np.asarray(llr, dtype=np.float64) / _LN10, 0.0, 100.0)
    return out


@dataclass(frozen=True)
class Calibration:
    a: float  # slope: llr per unit of normalised score
    b: float  # offset

    def llr(self, normalized: npt.ArrayLike) -> npt.NDArray[np.float64]:
        out: npt.NDArray[np.float64] = self.a * np.asarray(normalized, dtype=np.float64) + self.b
        return out

    def scale(self, normalized: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return llr_to_scale(self.llr(normalized))

    def __call__(self, normalized: float) -> float:
        return float(self.scale(normalized))


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
