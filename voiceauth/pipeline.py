"""The whole path in one place: audio -> front end -> embedding -> scoring / decision -> store and audit.

Used by the HTTP API and the IVR flows; each step is its own module and this one only sequences them::

    pipe = Pipeline.from_settings(settings)
    pipe.register("acme", "customer-42", consent_method="ivr", consent_text_version="v1", actor="api")
    pipe.enroll("acme", "customer-42", wav_bytes)             # -> EnrollmentResult (progress, feedback)
    pipe.verify("acme", "customer-42", wav_bytes, call_id=c)  # -> VerificationResult (decision, score)

Audio may be given as bytes (decoded by the front end) or as an already-built :class:`Utterance`.
Audio is embedded only when it is good enough to be used; it is never stored. Wideband audio is embedded in both
bands (``Utterance.speech`` and ``Utterance.speech_wide``, one engine call): the telephone band for the voiceprint
every probe can use and the watchlist, the full band for full-band voiceprints (``voiceauth.verification``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from enrollment.policy import EnrollmentPolicy, screen_quality
from enrollment.session import Enroller, EnrollmentResult
from voiceauth.audio.types import Utterance
from voiceauth.config import Settings
from voiceauth.embedding.base import EmbeddingEngine, FloatArray
from voiceauth.embedding.space import telephone_space
from voiceauth.errors import ConfigError
from voiceauth.scoring.backend import CohortScorer
from voiceauth.scoring.base import CosineScorer, Scorer
from voiceauth.store.repo import Clock, Store, open_store, utcnow
from voiceauth.verification import ChallengeAnswer, SpoofCheck, VerificationPolicy, VerificationResult, Verifier
from voiceauth.watchlist import COSINE_OPERATING_POINTS

if TYPE_CHECKING:
    from voiceauth.antispoof.countermeasure import Countermeasure, SpoofResult
    from voiceauth.antispoof.monitor import MonitorScorer
    from voiceauth.liveness.challenges import IssuedChallenge
    from voiceauth.liveness.recognizer import DigitRecognizer

__all__ = ["AudioInput", "FrontEndLike", "Pipeline", "default_scoring", "embed_bands"]

log = logging.getLogger(__name__)


class FrontEndLike(Protocol):
    def from_bytes(
        self, data: bytes, *, fmt: str | None = None, sample_rate: int | None = None, channel: int | None = None
    ) -> Utterance: ...


AudioInput = bytes | Utterance


def embed_bands(engine: EmbeddingEngine, utt: Utterance) -> tuple[FloatArray, FloatArray | None]:
    """(telephone-band, full-band) embeddings of an utterance: the full band only when the front end kept one
    (``Utterance.speech_wide``: wideband input). Each band goes through its own network (the telephone band
    through the telephone-adapted one, ``telephone=True``)."""
    tel = engine.embed(utt.speech, utt.sample_rate, telephone=utt.speech_telephone)
    if utt.speech_wide is None or utt.speech_wide.size == 0:
        return tel, None
    return tel, engine.embed(utt.speech_wide, utt.sample_rate)


def check_cohort_space(settings: Settings, space: str) -> None:
    """Refuse to start when the narrowband cohort was embedded by another network than the engine's: AS-norm and
    calibration against it would be meaningless, and the operating points' false-accept rates would not hold."""
    from voiceauth.scoring.shipped import COHORT_DIR, cohort_space

    folder = settings.scoring_cohort_dir or COHORT_DIR
    built = cohort_space(folder)
    if built is not None and built != space:
        raise ConfigError(
            f"the narrowband cohort in {folder} was embedded by the {built!r} network but the engine's telephone-band "
            f"network is {space!r} (VOICEAUTH_TELEPHONE_ADAPTER={'true' if settings.telephone_adapter else 'false'}); "
            "set VOICEAUTH_TELEPHONE_ADAPTER back, or rebuild the cohort with `python -m voiceauth.scoring.build`"
        )


def default_scoring(settings: Settings) -> tuple[Scorer, dict[str, float]]:
    """The production scorer and its measured operating points (plain cosine only if none is configured)."""
    from voiceauth.scoring.factory import create_scorer

    scorer = create_scorer(settings)
    if isinstance(scorer, CosineScorer):
        return scorer, dict(COSINE_OPERATING_POINTS)
    from voiceauth.scoring.operating_points import default_operating_points

    return scorer, default_operating_points()


@dataclass
class Pipeline:
    engine: EmbeddingEngine
    enroller: Enroller
    verifier: Verifier
    frontend: FrontEndLike | None = None
    min_verify_speech_s: float = 3.0
    replay_check: bool = False  # from_settings: Settings.replay_check
    replay_retention_s: float = 30 * 86_400.0
    replay_max_ber: float | None = None  # None: the replay module's default
    countermeasure: Countermeasure | None = None  # AASIST; from_settings: loaded unless antispoof_mode is off
    antispoof_mode: str = "off"  # off | monitor (score + audit only) | enforce (SPOOF_SUSPECTED at the threshold)
    challenge_digits: int = 6  # liveness challenges (voiceauth.liveness): digits, expiry
    challenge_ttl_s: float = 60.0
    recognizer: DigitRecognizer | None = None  # the digit recogniser (created on first use)
    recognizer_processes: int = 0  # from_settings: Settings.liveness_recognizer_processes (0: in this process)
    _monitor: MonitorScorer | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        engine: EmbeddingEngine | None = None,
        scorer: Scorer | None = None,
        operating_points: Mapping[str, float] | None = None,
        store: Store | None = None,
        frontend: FrontEndLike | None = None,
        clock: Clock = utcnow,
        countermeasure: Countermeasure | None = None,
    ) -> Pipeline:
        """Wire every component from settings; any of them may be injected (tests, the API's lifespan)."""
        if countermeasure is None and settings.antispoof_mode != "off":
            from voiceauth.antispoof.countermeasure import create_countermeasure

            countermeasure = create_countermeasure(settings)
        if engine is None:
            from voiceauth.embedding.factory import create_engine

            engine = create_engine(settings)
        space = telephone_space(engine)
        if scorer is None:
            scorer, points = default_scoring(settings)
            operating_points = operating_points or points
            if isinstance(scorer, CohortScorer) and hasattr(engine, "telephone_adapter"):  # a real network
                check_cohort_space(settings, space)
        elif operating_points is None:
            operating_points = COSINE_OPERATING_POINTS if isinstance(scorer, CosineScorer) else None
            if operating_points is None:
                from voiceauth.scoring.operating_points import default_operating_points

                operating_points = default_operating_points()
        if frontend is None:
            from voiceauth.audio.frontend import FrontEnd

            frontend = FrontEnd(settings)
        store = store or open_store(settings, clock=clock)
        vpol = VerificationPolicy.from_settings(settings)
        return cls(
            engine=engine,
            enroller=Enroller(store, scorer, operating_points, EnrollmentPolicy.from_settings(settings), space=space),
            verifier=Verifier(store, scorer, operating_points, vpol, space=space),
            frontend=frontend,
            min_verify_speech_s=vpol.min_speech_s,
            replay_check=settings.replay_check,
            replay_retention_s=settings.replay_retention_s,
            replay_max_ber=settings.replay_max_ber,
            countermeasure=countermeasure if settings.antispoof_mode != "off" else None,
            antispoof_mode=settings.antispoof_mode,
            challenge_digits=settings.challenge_digits,
            challenge_ttl_s=settings.challenge_ttl_s,
            recognizer_processes=settings.liveness_recognizer_processes,
        )

    @property
    def store(self) -> Store:
        return self.enroller.store

    @property
    def space(self) -> str:
        """The network of this pipeline's telephone-band embeddings (see :mod:`voiceauth.embedding.space`)."""
        return self.enroller.space

    # -- steps ----------------------------------------------------------------------------------------
    def utterance(self, audio: AudioInput, **decode: Any) -> Utterance:
        """Front end: bytes (``fmt``, ``sample_rate``, ``channel`` as keywords) -> Utterance; raises AudioError."""
        if isinstance(audio, Utterance):
            return audio
        if self.frontend is None:
            raise TypeError("this pipeline has no front end; pass an Utterance")
        return self.frontend.from_bytes(audio, **decode)

    def embed(self, utt: Utterance) -> FloatArray:
        """The embedding of ``Utterance.speech`` (the telephone band unless ``audio_band="wide"``) alone."""
        return self.engine.embed(utt.speech, utt.sample_rate, telephone=utt.speech_telephone)

    def embed_probe(self, utt: Utterance, *, challenge: bool = False) -> tuple[FloatArray | None, FloatArray | None]:
        """A verification probe's (telephone-band, full-band) embeddings; (None, None) below the minimum speech.

        Wideband probes are embedded in both bands whatever the claimed voiceprint holds, so the work (and time)
        does not depend on what the claimed speaker enrolled, nor on whether the speaker exists."""
        minimum = self.verifier.policy.min_speech_for(challenge=True) if challenge else self.min_verify_speech_s
        if utt.quality.net_speech_s < minimum or utt.speech.size == 0:
            return None, None
        return embed_bands(self.engine, utt)

    # -- operations -------------------------------------------------------------------------------------
    def register(
        self, tenant: str, external_ref: str, *, consent_method: str, consent_text_version: str, actor: str
    ) -> int:
        return self.enroller.register(
            tenant, external_ref, consent_method=consent_method, consent_text_version=consent_text_version, actor=actor
        )

    def enroll(
        self,
        tenant: str,
        external_ref: str,
        audio: AudioInput,
        *,
        replace: bool = False,
        actor: str = "",
        **decode: Any,
    ) -> EnrollmentResult:
        utt = self.utterance(audio, **decode)
        usable = not screen_quality(utt.quality, self.enroller.policy) and utt.speech.size > 0
        emb, wide = embed_bands(self.engine, utt) if usable else (None, None)
        return self.enroller.enroll(
            tenant,
            external_ref,
            emb,
            utt.quality,
            narrowband=utt.narrowband,
            embedding_wide=wide,
            replace=replace,
            actor=actor,
        )

    def verify(
        self,
        tenant: str,
        external_ref: str,
        audio: AudioInput,
        *,
        call_id: str = "",
        actor: str = "",
        challenge_id: str | None = None,
        **decode: Any,
    ) -> VerificationResult:
        utt = self.utterance(audio, **decode)
        emb, wide = self.embed_probe(utt, challenge=challenge_id is not None)
        answer = self.hear(tenant, external_ref, utt, challenge_id) if challenge_id else None
        return self.verify_probe(tenant, external_ref, utt, emb, wide, call_id=call_id, actor=actor, challenge=answer)

    # -- liveness challenges ------------------------------------------------------------------------------
    def issue_challenge(
        self, tenant: str, external_ref: str, *, call_id: str = "", actor: str = "", n_digits: int | None = None
    ) -> IssuedChallenge:
        """A fresh liveness challenge for ``external_ref`` (issued whether or not it is enrolled)."""
        from voiceauth.liveness.store import issue_challenge

        with self.store.transaction() as tx:
            t = tx.tenant(tenant)
            return issue_challenge(
                tx,
                t.id,
                external_ref,
                n_digits=n_digits or self.challenge_digits,
                ttl_s=self.challenge_ttl_s,
                call_id=call_id,
                actor=actor,
            )

    def digit_recognizer(self) -> DigitRecognizer:
        if self.recognizer is None:
            from voiceauth.liveness.recognizer import create_recognizer

            self.recognizer = create_recognizer(processes=self.recognizer_processes)
        return self.recognizer

    def hear(self, tenant: str, external_ref: str, utt: Utterance, challenge_id: str) -> ChallengeAnswer:
        """The digits said in ``utt`` for challenge ``challenge_id`` (which must be unused and unexpired; raises
        ChallengeError otherwise). Recognised on the speech with its pauses (``Utterance.span``)."""
        from voiceauth.liveness.store import challenge_length

        with self.store.transaction() as tx:
            n = challenge_length(tx, tx.tenant(tenant).id, external_ref, challenge_id)
        audio = utt.span if utt.span is not None and utt.span.size else utt.speech
        heard = self.digit_recognizer().recognize(audio, utt.sample_rate, n).digits if audio.size else ""
        return ChallengeAnswer(challenge_id, heard)

    def verify_probe(
        self,
        tenant: str,
        external_ref: str,
        utt: Utterance,
        emb: FloatArray | None,
        wide: FloatArray | None,
        *,
        call_id: str = "",
        actor: str = "",
        challenge: ChallengeAnswer | None = None,
    ) -> VerificationResult:
        """Decide on an embedded probe (:meth:`embed_probe`): anti-spoofing, verifier, monitor-mode scoring after it.
        The steps after embedding of :meth:`verify`, shared with the API upload route."""
        later = self.scores_after_decision(emb)
        res = self.verifier.verify(
            tenant,
            external_ref,
            emb,
            probe_wide=wide,
            net_speech_s=utt.quality.net_speech_s,
            narrowband=utt.narrowband,
            call_id=call_id,
            actor=actor,
            spoof_check=self.spoof_check(utt.speech, span=utt.span, score=not later) if emb is not None else None,
            replay_retention_s=self.replay_retention_s,
            challenge=challenge,
        )
        if later:
            self.score_after_decision(tenant, res, utt)
        return res

    def scores_after_decision(self, emb: FloatArray | None) -> bool:
        """Monitor mode: the spoof score cannot change the decision, so AASIST runs after it (MonitorScorer)."""
        return emb is not None and self.antispoof_mode == "monitor" and self.countermeasure is not None

    def score_after_decision(self, tenant: str, res: VerificationResult, utt: Utterance) -> None:
        """Queue the AASIST scoring of a decided attempt whose voice was scored (not for a replay)."""
        if res.attempt_id is None or res.score is None or res.spoof_reason == "replay":
            return
        span = utt.span if utt.span is not None and utt.span.size else utt.speech
        self.monitor_scorer().submit(tenant, res.attempt_id, span)

    def monitor_scorer(self) -> MonitorScorer:
        """The background AASIST scorer of monitor mode (created on first use)."""
        if self._monitor is None:
            from voiceauth.antispoof.monitor import MonitorScorer

            assert self.countermeasure is not None
            self._monitor = MonitorScorer(self.countermeasure, self.verifier)
        return self._monitor

    def settle_spoof(self, timeout_s: float | None = 60.0) -> bool:
        """Wait for monitor-mode scores still being computed (tests, shutdown); True when none is left."""
        return self._monitor is None or self._monitor.settle(timeout_s)

    def spoof_check(
        self,
        speech_16k: FloatArray,
        spoof: SpoofResult | None = None,
        *,
        span: FloatArray | None = None,
        score: bool = True,
    ) -> SpoofCheck | None:
        """The anti-spoofing check of ``speech_16k`` (16 kHz VAD speech) for the verifier, or None when both checks
        are off: the AASIST score (``antispoof_mode`` monitor/enforce; computed here, before the verification
        transaction, unless ``spoof`` already holds it) of ``span`` (``Utterance.span``: the speech with its pauses,
        which AASIST needs; ``speech_16k`` if not given) and the replay check of ``speech_16k`` against the
        speaker's earlier attempts (run inside the transaction, which hands over their fingerprints).
        ``score=False``: the replay check only (monitor-mode uploads are scored after the decision)."""
        scoring = self.antispoof_mode != "off" and (spoof is not None or (score and self.countermeasure is not None))
        if not (self.replay_check or scoring) or speech_16k.size == 0:
            return None
        from voiceauth.antispoof.check import check_mode, make_check
        from voiceauth.antispoof.replay import DEFAULT_MAX_BER, ReplayPolicy

        if scoring and spoof is None:
            assert self.countermeasure is not None
            spoof = self.countermeasure.score(span if span is not None and span.size else speech_16k)
        max_ber = DEFAULT_MAX_BER if self.replay_max_ber is None else self.replay_max_ber
        clock = self.store.clock
        return make_check(
            speech_16k,
            spoof=spoof if scoring else None,
            mode=check_mode(self.antispoof_mode),
            replay=ReplayPolicy(self.replay_retention_s, max_ber) if self.replay_check else None,
            now=lambda: clock().timestamp(),
        )
