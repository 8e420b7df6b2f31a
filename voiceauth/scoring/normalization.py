"""Score normalisation math: embedding pre-processing (centring, linear projection) and adaptive S-norm.

AS-norm (Matejka et al., 2017; Cumani et al., 2011): for an enrolment ``e`` and a probe ``p`` with raw score
``s`` and an impostor cohort ``C``, take the ``top_n`` highest cohort scores of each side and

    s_norm = ((s - mu_e) / sd_e + (s - mu_p) / sd_p) / 2

where ``mu_x, sd_x`` are the mean and standard deviation of the top-``top_n`` scores of ``x`` against ``C``.
Pure numpy; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from voiceauth.errors import ConfigError

__all__ = ["Preprocessor", "as_norm", "cohort_stats", "l2_normalize", "lda", "wccn"]

F64 = npt.NDArray[np.float64]
_EPS = 1e-9


def l2_normalize(x: npt.ArrayLike) -> F64:
    """Rows (or one vector) scaled to unit length; zero rows stay zero."""
    a = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(a, axis=-1, keepdims=True)
    out: F64 = a / np.maximum(norm, _EPS)
    return out


@dataclass(frozen=True)
class Preprocessor:
    """``x -> normalise((x - mean) @ projection)``; ``mean`` / ``projection`` None means skip that step."""

    mean: F64 | None = None
    projection: F64 | None = None  # [dim, out_dim], e.g. LDA / WCCN

    def __call__(self, x: npt.ArrayLike) -> F64:
        a = l2_normalize(x)
        if self.mean is not None:
            a = a - self.mean
        if self.projection is not None:
            a = a @ self.projection
        return l2_normalize(a)


def cohort_stats(x: F64, cohort: F64, top_n: int) -> tuple[F64, F64]:
    """Mean and standard deviation of the ``top_n`` highest cosine scores of each row of ``x`` vs ``cohort``.

    ``x`` [k, d] and ``cohort`` [m, d] are unit-length rows. Returns two arrays of shape [k].
    """
    if top_n < 2:
        raise ConfigError(f"AS-norm top_n={top_n}: need at least 2 cohort scores for a deviation")
    scores = np.atleast_2d(x) @ cohort.T
    n = min(top_n, cohort.shape[0])
    top = -np.partition(-scores, n - 1, axis=1)[:, :n]
    return top.mean(axis=1), np.maximum(top.std(axis=1), _EPS)


def as_norm(raw: npt.ArrayLike, enrol_stats: tuple[F64, F64], probe_stats: tuple[F64, F64]) -> F64:
    """Symmetric adaptive S-norm of ``raw`` scores given (mean, std) of the enrolment and probe sides."""
    s = np.asarray(raw, dtype=np.float64)
    mu_e, sd_e = enrol_stats
    mu_p, sd_p = probe_stats
    out: F64 = 0.5 * ((s - mu_e) / sd_e + (s - mu_p) / sd_p)
    return out


def wccn(x: npt.ArrayLike, labels: npt.ArrayLike, shrinkage: float = 0.1) -> F64:
    """Within-class covariance normalisation: a projection ``B`` with ``B @ B.T = inv(S_w + shrink)``.

    ``x`` [n, d] are (pre-processed) embeddings with speaker ``labels``; ``S_w`` is their average
    within-speaker covariance, shrunk towards ``shrinkage * trace(S_w) / d * I`` because a cohort has few
    pieces per speaker. Scoring ``(x B) . (y B)`` then weighs directions by how little they vary within
    a speaker (Hatch et al., 2006).
    """
    a = np.asarray(x, dtype=np.float64)
    lab = np.asarray(labels)
    centred = np.empty_like(a)
    for spk in np.unique(lab):
        sel = lab == spk
        centred[sel] = a[sel] - a[sel].mean(axis=0)
    sw = centred.T @ centred / max(1, a.shape[0] - np.unique(lab).size)
    d = sw.shape[0]
    sw = (1.0 - shrinkage) * sw + shrinkage * (np.trace(sw) / d) * np.eye(d)
    out: F64 = np.linalg.cholesky(np.linalg.inv(sw))
    return out


def lda(x: npt.ArrayLike, labels: npt.ArrayLike, dim: int, shrinkage: float = 1e-3) -> F64:
    """Linear discriminant analysis: the ``dim`` directions that best separate speakers, ``[d, dim]``.

    Solves ``S_b v = lambda S_w v`` (between- and within-speaker scatter of ``x`` [n, d] with speaker
    ``labels``) and keeps the eigenvectors of the ``dim`` largest eigenvalues; ``S_w`` is shrunk by
    ``shrinkage * trace(S_w) / d`` so it stays invertible. ``dim`` must be below the number of speakers.
    """
    a = np.asarray(x, dtype=np.float64)
    lab = np.asarray(labels)
    speakers = np.unique(lab)
    d = a.shape[1]
    if not 0 < dim < min(d + 1, speakers.size):
        raise ConfigError(f"LDA dimension {dim} is not accepted: use 1 to {min(d, speakers.size - 1)} for this data")
    mu = a.mean(axis=0)
    sw = np.zeros((d, d))
    sb = np.zeros((d, d))
    for spk in speakers:
        xs = a[lab == spk]
        m = xs.mean(axis=0)
        sw += (xs - m).T @ (xs - m)
        sb += xs.shape[0] * np.outer(m - mu, m - mu)
    sw = sw / a.shape[0] + shrinkage * np.trace(sw / a.shape[0]) / d * np.eye(d)
    sb /= a.shape[0]
    # whiten S_w (Cholesky), then an ordinary symmetric eigenproblem
    chol = np.linalg.cholesky(sw)
    inv_chol = np.linalg.inv(chol)
    vals, vecs = np.linalg.eigh(inv_chol @ sb @ inv_chol.T)
    order = np.argsort(vals)[::-1][:dim]
    out: F64 = inv_chol.T @ vecs[:, order]
    return out
