"""Evaluate a scorer on a labelled set of embeddings: every unordered pair is a trial.

Used by ``voiceauth evaluate`` and the accuracy benchmark. Pairs are scored through the scorer's own
``score`` path; a :class:`~voiceauth.scoring.backend.CohortScorer` is scored all-pairs at once with the very
same code (``ChannelBackend.normalized_matrix`` and ``calibrated``) that its ``score`` uses. As in
production (``audio_band="auto"``), a pair of two full-band (wideband) files is scored on their full-band
embeddings with the wideband back end, every other pair on telephone-band embeddings with the narrowband back
end. ``eer`` / ``min_dcf`` are those of the calibrated 0-100 score, the one the thresholds apply to
(calibration and the guard included). Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np
import numpy.typing as npt

from voiceauth.scoring.backend import CohortScorer
from voiceauth.scoring.base import Scorer
from voiceauth.scoring.metrics import MetricsError, eer, min_dcf
from voiceauth.scoring.normalization import F64

__all__ = ["cross_scores", "cross_trials", "evaluate", "evaluate_cross", "pair_scores"]


def pair_scores(
    scorer: Scorer,
    embeddings: npt.ArrayLike,
    narrowband: Sequence[bool],
    speech_s: Sequence[float],
    telephone: npt.ArrayLike | None = None,
) -> tuple[F64, F64, F64, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(raw cosine, normalised, calibrated, i, j) for every pair i < j.

    ``embeddings[i]`` is file i's full-band embedding where ``narrowband[i]`` is False, else its telephone-band
    one; ``telephone`` holds the telephone-band embeddings of the full-band files (rows of the others are
    ignored), needed only when both kinds of file are present.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    n = x.shape[0]
    iu, ju = np.triu_indices(n, k=1)
    nb = np.asarray(narrowband, dtype=bool)
    pair_nb = nb[iu] | nb[ju]
    tel = x
    if np.any(nb) and not np.all(nb):
        if telephone is None:
            raise MetricsError(
                "full-band and telephone files are mixed: give the full-band files' telephone embeddings"
            )
        tel = np.where(nb[:, None], x, np.asarray(telephone, dtype=np.float64))
    if isinstance(scorer, CohortScorer):
        raw = np.empty(iu.size)
        norm = np.empty(iu.size)
        cal = np.empty(iu.size)
        for flag in (False, True):
            sel = pair_nb == flag
            if not np.any(sel):
                continue
            r, m, c = scorer.score_matrix(tel if flag else x, narrowband=flag, speech_s=speech_s)
            raw[sel] = r[iu[sel], ju[sel]]
            norm[sel] = m[iu[sel], ju[sel]]
            cal[sel] = c[iu[sel], ju[sel]]
        return raw, norm, cal, iu, ju
    scores = [
        scorer.score(
            (tel if nb[i] or nb[j] else x)[i].astype(np.float32),
            (tel if nb[i] or nb[j] else x)[j].astype(np.float32),
            narrowband=bool(nb[i] or nb[j]),
            probe_speech_s=float(speech_s[j]),
        )
        for i, j in combinations(range(n), 2)
    ]
    return (
        np.array([s.raw_cosine for s in scores]),
        np.array([s.normalized for s in scores]),
        np.array([s.calibrated for s in scores]),
        iu,
        ju,
    )


def evaluate(
    scorer: Scorer,
    embeddings: npt.ArrayLike,
    speakers: Sequence[str],
    narrowband: Sequence[bool],
    speech_s: Sequence[float],
    telephone: npt.ArrayLike | None = None,
) -> dict[str, Any]:
    """EER, minDCF (p_target 0.01) and trial counts of the scorer's calibrated score (and of the normalised
    score and raw cosine, for comparison). Embeddings as in :func:`pair_scores`."""
    spk = np.asarray(speakers)
    if spk.size < 2:
        raise MetricsError(f"need at least two files to make a trial, got {spk.size}")
    raw, norm, cal, iu, ju = pair_scores(scorer, embeddings, narrowband, speech_s, telephone)
    same = spk[iu] == spk[ju]
    if not np.any(same) or np.all(same):
        raise MetricsError(
            f"need both target and non-target trials, got {int(same.sum())} and {int((~same).sum())}: "
            "use at least two speakers, one with two or more files"
        )
    return {
        "eer": eer(cal[same], cal[~same]),
        "min_dcf": min_dcf(cal[same], cal[~same], p_target=0.01),
        "target_trials": int(same.sum()),
        "nontarget_trials": int((~same).sum()),
        "files": int(spk.size),
        "speakers": int(np.unique(spk).size),
        "normalized_eer": eer(norm[same], norm[~same]),
        "normalized_min_dcf": min_dcf(norm[same], norm[~same], p_target=0.01),
        "raw_cosine_eer": eer(raw[same], raw[~same]),
        "raw_cosine_min_dcf": min_dcf(raw[same], raw[~same], p_target=0.01),
    }


def cross_scores(
    scorer: Scorer,
    enrolled: npt.ArrayLike,
    probes: npt.ArrayLike,
    narrowband: bool,
    probe_s: Sequence[float],
) -> tuple[F64, F64, F64]:
    """(raw cosine, normalised, calibrated) [n, n]: enrolment ``enrolled[i]`` against probe ``probes[j]`` (for
    evaluation by duration: whole pieces enrolled, crops of the same pieces as probes; one channel)."""
    e = np.asarray(enrolled, dtype=np.float64)
    p = np.asarray(probes, dtype=np.float64)
    if isinstance(scorer, CohortScorer):
        return scorer.cross_matrix(e, p, narrowband=narrowband, probe_s=np.asarray(probe_s, dtype=np.float64))
    shape = (e.shape[0], p.shape[0])
    raw, norm, cal = np.empty(shape), np.empty(shape), np.empty(shape)
    for i in range(shape[0]):
        for j in range(shape[1]):
            s = scorer.score(
                e[i].astype(np.float32),
                p[j].astype(np.float32),
                narrowband=narrowband,
                probe_speech_s=float(probe_s[j]),
            )
            raw[i, j], norm[i, j], cal[i, j] = s.raw_cosine, s.normalized, s.calibrated
    return raw, norm, cal


def cross_trials(matrix: npt.ArrayLike, speakers: Sequence[str]) -> tuple[F64, F64]:
    """Target / non-target values of an [n, n] enrolment x probe matrix of the same n pieces: every ordered pair
    i != j (a piece is never its own probe)."""
    m = np.asarray(matrix, dtype=np.float64)
    spk = np.asarray(speakers)
    same = spk[:, None] == spk[None, :]
    off = ~np.eye(spk.size, dtype=bool)
    return m[off & same], m[off & ~same]


def evaluate_cross(
    scorer: Scorer,
    enrolled: npt.ArrayLike,
    probes: npt.ArrayLike,
    speakers: Sequence[str],
    narrowband: bool,
    probe_s: Sequence[float],
) -> dict[str, Any]:
    """As :func:`evaluate`, for whole-piece enrolments against (cropped) probes: every ordered pair i != j."""
    spk = np.asarray(speakers)
    if spk.size < 2:
        raise MetricsError(f"need at least two files to make a trial, got {spk.size}")
    raw, norm, cal = cross_scores(scorer, enrolled, probes, narrowband, probe_s)
    t, n = cross_trials(cal, speakers)
    if t.size == 0 or n.size == 0:
        raise MetricsError(f"need both target and non-target trials, got {t.size} and {n.size}")
    nt, nn = cross_trials(norm, speakers)
    rt, rn = cross_trials(raw, speakers)
    return {
        "eer": eer(t, n),
        "min_dcf": min_dcf(t, n, p_target=0.01),
        "target_trials": int(t.size),
        "nontarget_trials": int(n.size),
        "files": int(spk.size),
        "speakers": int(np.unique(spk).size),
        "normalized_eer": eer(nt, nn),
        "raw_cosine_eer": eer(rt, rn),
        "raw_cosine_min_dcf": min_dcf(rt, rn, p_target=0.01),
        "calibrated": cal,
    }
