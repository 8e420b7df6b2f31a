"""The production scorer: per-channel pre-processing, AS-norm against a channel-matched cohort, calibration.

One :class:`ChannelBackend` per channel (``wideband`` 16 kHz, ``narrowband`` 8 kHz telephone / G.711); the
scorer picks it by the ``narrowband`` flag of the probe. What each channel uses (cohort-mean centring, a
projection, AS-norm top-N) was chosen on the cohort half of the readers and is recorded in
``models/cohort/backend.json``. Pure numpy; the files are read by :mod:`voiceauth.scoring.shipped`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from voiceauth.embedding.base import FloatArray, cosine
from voiceauth.scoring.base import Score
from voiceauth.scoring.calibration import Calibration
from voiceauth.scoring.normalization import F64, Preprocessor, as_norm, cohort_stats

__all__ = ["ChannelBackend", "CohortScorer", "CosineGuard"]


@dataclass(frozen=True)
class CosineGuard:
    """Caps the calibrated score by what the raw cosine alone supports (a safety bound on normalisation).

    AS-norm and centring measure a probe against the shipped (read-speech) cohort; audio from another domain, such
    as digit strings that share their words, can get normalised scores far above any cohort impostor although its
    raw cosine is ordinary (seen: FSDD impostors at raw cosine 0.37 calibrated to 89 of 100). The guard maps raw
    cosine to the calibrated scale through knots ``(impostor cosine quantile at FAR f, threshold of the operating
    point with target FAR f)`` measured on the cohort, so a trial whose raw cosine is below the cohort's impostor
    cosine at an operating point's FAR cannot pass that operating point. The final score is the smaller of the two.

    A guard on the cohort-centred cosine instead was tried (session 3): FSDD EER 2.09 -> 1.94, but FSDD impostors
    then passed ``high_security`` (target FAR 0.1%) at 1.67% FAR (0.15% with this guard) and the streaming
    benchmark accepted an FSDD impostor; the raw cosine is kept for that safety.
    """

    cosines: tuple[float, ...]  # increasing raw cosine knots
    scores: tuple[float, ...]  # calibrated scores at those knots (non-decreasing)

    def __call__(self, raw_cosine: npt.ArrayLike) -> F64:
        out: F64 = np.interp(np.asarray(raw_cosine, dtype=np.float64), self.cosines, self.scores)
        return out


@dataclass(frozen=True)
class ChannelBackend:
    """How one channel is scored. ``cohort`` holds raw unit embeddings; it is pre-processed once here."""

    name: str
    preprocessor: Preprocessor
    cohort: F64  # [m, dim] raw cohort embeddings through this channel
    top_n: int | None  # AS-norm cohort size; None = no AS-norm
    calibration: Calibration
    guard: CosineGuard | None = None  # set when the channel normalises (see CosineGuard)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cohort_pp", self.preprocessor(self.cohort))

    def normalized_matrix(self, enrol: npt.ArrayLike, probe: npt.ArrayLike) -> F64:
        """Normalised scores of every enrolment row [k, d] against every probe row [j, d] -> [k, j]."""
        e = self.preprocessor(np.atleast_2d(np.asarray(enrol, dtype=np.float64)))
        p = self.preprocessor(np.atleast_2d(np.asarray(probe, dtype=np.float64)))
        s: F64 = e @ p.T
        if self.top_n is None:
            return s
        cohort: F64 = object.__getattribute__(self, "_cohort_pp")
        mu_e, sd_e = cohort_stats(e, cohort, self.top_n)
        mu_p, sd_p = cohort_stats(p, cohort, self.top_n)
        return as_norm(s, (mu_e[:, None], sd_e[:, None]), (mu_p[None, :], sd_p[None, :]))

    def calibrated(
        self, normalized: npt.ArrayLike, raw_cosine: npt.ArrayLike, probe_s: npt.ArrayLike | None = None
    ) -> F64:
        """Calibrated 0-100 score (with the duration term when ``probe_s``, the probes' net speech, is given),
        capped by the raw-cosine guard when the channel has one."""
        cal: F64 = np.asarray(
            self.calibration.scale(np.asarray(normalized, dtype=np.float64), probe_s), dtype=np.float64
        )
        if self.guard is None:
            return cal
        capped: F64 = np.minimum(cal, self.guard(raw_cosine))
        return capped


class CohortScorer:
    """The production :class:`~voiceauth.scoring.base.Scorer` (wideband and narrowband back ends)."""

    def __init__(self, wideband: ChannelBackend, narrowband: ChannelBackend) -> None:
        self.wideband = wideband
        self.narrowband = narrowband

    def backend(self, narrowband: bool) -> ChannelBackend:
        return self.narrowband if narrowband else self.wideband

    def score(self, enrolled: FloatArray, probe: FloatArray, *, narrowband: bool, probe_speech_s: float) -> Score:
        backend = self.backend(narrowband)
        norm = float(backend.normalized_matrix(enrolled, probe)[0, 0])
        raw = cosine(enrolled, probe)
        cal = float(backend.calibrated(norm, raw, probe_speech_s))
        return Score(raw_cosine=raw, normalized=norm, calibrated=cal)

    def score_matrix(
        self, embeddings: npt.ArrayLike, *, narrowband: bool, speech_s: npt.ArrayLike | None = None
    ) -> tuple[F64, F64, F64]:
        """All-pairs (raw cosine, normalised, calibrated) [n, n] of one set of embeddings (for evaluation); column
        j is the probe, so ``speech_s[j]`` (net speech) is its duration for the calibration."""
        return self.cross_matrix(embeddings, embeddings, narrowband=narrowband, probe_s=speech_s)

    def cross_matrix(
        self,
        enrolled: npt.ArrayLike,
        probes: npt.ArrayLike,
        *,
        narrowband: bool,
        probe_s: npt.ArrayLike | None = None,
    ) -> tuple[F64, F64, F64]:
        """(raw cosine, normalised, calibrated) [k, j] of every enrolment row against every probe row, with the
        probes' net speech ``probe_s`` [j] in the calibration (the same code as :meth:`score`)."""
        e = np.asarray(enrolled, dtype=np.float64)
        p = np.asarray(probes, dtype=np.float64)
        ue = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
        up = p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
        backend = self.backend(narrowband)
        norm = backend.normalized_matrix(e, p)
        raw: F64 = ue @ up.T
        dur = None if probe_s is None else np.broadcast_to(np.asarray(probe_s, dtype=np.float64)[None, :], raw.shape)
        return raw, norm, backend.calibrated(norm, raw, dur)
