"""Candidate scoring back ends and how they are compared on the cohort half (pure numpy; no I/O).

A :class:`Candidate` names one combination of the levers the back end can use, in this order:

    unit embedding -> minus the cohort mean (``centre``) -> LDA to ``lda_dim`` dimensions (``lda_dim``)
    -> within-class covariance normalisation (``wccn``) -> unit length -> cosine -> AS-norm top-N (``top_n``)

:func:`make_backend` trains one on cohort embeddings only; :func:`fold_scores` measures it inside the
cohort half (readers dealt into folds; the pairs between two folds are scored with a back end trained on the others,
and the other way round), so evaluation readers are never used to choose or train anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from voiceauth.scoring.backend import ChannelBackend
from voiceauth.scoring.calibration import Calibration
from voiceauth.scoring.metrics import eer, min_dcf
from voiceauth.scoring.normalization import F64, Preprocessor, l2_normalize, lda, wccn

__all__ = [
    "CANDIDATES",
    "Candidate",
    "choose",
    "FOLDS",
    "evaluate_candidate",
    "make_backend",
    "trial_scores",
    "fold_scores",
    "fold_trials",
    "CrossTrials",
    "cross_fold_trials",
]


@dataclass(frozen=True)
class Candidate:
    centre: bool
    top_n: int | None
    wccn: bool = False
    lda_dim: int | None = None
    shrinkage: float = 0.1  # WCCN shrinkage towards a scaled identity

    @property
    def name(self) -> str:
        parts = ["centre"] if self.centre else []
        parts += [f"lda{self.lda_dim}"] if self.lda_dim else []
        parts += [("wccn" if self.shrinkage == 0.1 else f"wccn{self.shrinkage:g}")] if self.wccn else []
        parts += [f"asnorm{self.top_n}"] if self.top_n else []
        return "+".join(parts) or "cosine"

    @property
    def projects(self) -> bool:
        return self.wccn or self.lda_dim is not None


# LDA is kept to dimensions the k-fold training sets support (readers - 1); it lost everywhere it was tried
CANDIDATES: tuple[Candidate, ...] = (
    tuple(Candidate(False, n) for n in (None, 100, 300))
    + tuple(Candidate(True, n) for n in (None, 50, 100, 200, 300))
    + tuple(Candidate(True, n, wccn=True, shrinkage=k) for k in (0.1, 0.5) for n in (None, 100, 300))
    + tuple(Candidate(True, n, wccn=True, lda_dim=60) for n in (None, 300))
)


def trial_scores(matrix: F64, speakers: Sequence[str]) -> tuple[F64, F64]:
    """Target and non-target scores of every unordered pair (i < j) of a square score matrix."""
    spk = np.asarray(speakers)
    iu, ju = np.triu_indices(len(spk), k=1)
    same = spk[iu] == spk[ju]
    vals = matrix[iu, ju]
    return vals[same], vals[~same]


def make_backend(
    name: str, cand: Candidate, cohort: F64, speakers: Sequence[str], calib: Calibration | None = None
) -> ChannelBackend:
    """The back end a candidate describes, trained on ``cohort`` (embeddings of ``speakers``) only."""
    unit = l2_normalize(cohort)
    mean = unit.mean(axis=0) if cand.centre else None
    x = unit - mean if mean is not None else unit  # what the projection sees (Preprocessor order)
    projection: F64 | None = None
    if cand.lda_dim:
        projection = lda(x, speakers, cand.lda_dim)
    if cand.wccn:
        y = x @ projection if projection is not None else x
        w = wccn(y, speakers, shrinkage=cand.shrinkage)
        projection = w if projection is None else projection @ w
    return ChannelBackend(
        name=name,
        preprocessor=Preprocessor(mean=mean, projection=projection),
        cohort=unit,
        top_n=cand.top_n,
        calibration=calib or Calibration(1.0, 0.0),
    )


FOLDS = 5


def fold_scores(cand: Candidate, emb: F64, speakers: Sequence[str], folds: int = FOLDS) -> tuple[F64, F64]:
    """Target / non-target normalised scores of the development protocol (see :func:`fold_trials`)."""
    t, n, _, _ = fold_trials(cand, emb, speakers, folds)
    return t, n


def fold_trials(cand: Candidate, emb: F64, speakers: Sequence[str], folds: int = FOLDS) -> tuple[F64, F64, F64, F64]:
    """(target, non-target normalised scores, target, non-target raw cosines) over every pair of the cohort
    half's pieces, each scored by a back end trained without the readers of either side.

    Readers are dealt into ``folds`` folds; the pairs between folds ``a`` and ``b`` (``a == b`` included) are
    scored by a back end trained on the other folds' pieces. Every reader meets every other one, as in the
    evaluation sets (scoring each fold only against itself gave a dev set of ~25 readers, so easy that five back
    ends tied at 4 errors).
    """
    spk = np.asarray(speakers)
    readers = sorted(set(spk.tolist()))
    fold_of = {r: i % folds for i, r in enumerate(readers)}
    fold = np.array([fold_of[s] for s in spk.tolist()])
    unit = l2_normalize(emb)
    tars, nons, raw_t, raw_n = [], [], [], []
    for a in range(folds):
        for b in range(a, folds):
            train = (fold != a) & (fold != b)
            backend = make_backend("dev", cand, emb[train], spk[train].tolist())
            ia, ib = np.flatnonzero(fold == a), np.flatnonzero(fold == b)
            m = backend.normalized_matrix(emb[ia], emb[ib])
            r = unit[ia] @ unit[ib].T
            if a == b:
                t, n = trial_scores(m, spk[ia].tolist())
                rt, rn = trial_scores(r, spk[ia].tolist())
            else:
                same = spk[ia][:, None] == spk[ib][None, :]  # never true: a reader is in one fold
                t, n, rt, rn = m[same], m[~same], r[same], r[~same]
            tars.append(t)
            nons.append(n)
            raw_t.append(rt)
            raw_n.append(rn)
    return np.concatenate(tars), np.concatenate(nons), np.concatenate(raw_t), np.concatenate(raw_n)


def evaluate_candidate(cand: Candidate, emb: F64, speakers: Sequence[str]) -> dict[str, float]:
    t, n = fold_scores(cand, emb, speakers)
    return {"eer": eer(t, n), "min_dcf": min_dcf(t, n), "target_trials": t.size, "nontarget_trials": n.size}


def choose(results: dict[str, dict[str, float]], margin: float, min_target_trials: int = 100) -> str:
    """Lowest EER; a normalising back end must beat plain cosine by ``margin`` (relative) to be chosen, and
    only when the development trials are enough to tell (``min_target_trials``); otherwise plain cosine."""
    if results["cosine"]["target_trials"] < min_target_trials:
        return "cosine"
    best = min(results, key=lambda k: (results[k]["eer"], results[k]["min_dcf"]))
    if results[best]["eer"] > (1.0 - margin) * results["cosine"]["eer"]:
        return "cosine"
    return best


class CrossTrials(NamedTuple):
    """Development trials of whole-piece enrolments against cropped probes (see :func:`cross_fold_trials`)."""

    target: F64  # normalised scores
    nontarget: F64
    raw_target: F64  # raw cosines
    raw_nontarget: F64
    target_s: F64  # the probes' net speech
    nontarget_s: F64


def cross_fold_trials(
    cand: Candidate,
    enrol: F64,
    probe: F64,
    probe_s: F64,
    speakers: Sequence[str],
    folds: int = FOLDS,
) -> CrossTrials:
    """The development protocol of :func:`fold_trials` for short answers: piece i enrolled whole (``enrol[i]``)
    against the crop of piece j (``probe[j]``, net speech ``probe_s[j]``), every ordered pair i != j, scored by a
    back end trained on the whole pieces of the other folds' readers."""
    spk = np.asarray(speakers)
    readers = sorted(set(spk.tolist()))
    fold_of = {r: i % folds for i, r in enumerate(readers)}
    fold = np.array([fold_of[s] for s in spk.tolist()])
    ue, up = l2_normalize(enrol), l2_normalize(probe)
    dur = np.asarray(probe_s, dtype=np.float64)
    parts: list[list[F64]] = [[], [], [], [], [], []]
    for a in range(folds):
        for b in range(a, folds):
            train = (fold != a) & (fold != b)
            backend = make_backend("dev", cand, enrol[train], spk[train].tolist())
            for x, y in ((a, b), (b, a)) if a != b else ((a, a),):
                ix, iy = np.flatnonzero(fold == x), np.flatnonzero(fold == y)
                m = backend.normalized_matrix(enrol[ix], probe[iy])
                r = ue[ix] @ up[iy].T
                same = spk[ix][:, None] == spk[iy][None, :]
                keep = ix[:, None] != iy[None, :]
                d = np.broadcast_to(dur[iy][None, :], m.shape)
                for k, (arr, sel) in enumerate(((m, same), (m, ~same), (r, same), (r, ~same), (d, same), (d, ~same))):
                    parts[k].append(arr[sel & keep])
    return CrossTrials(*(np.concatenate(p) for p in parts))
