"""Streaming verification of one call leg: chunks in, one decision out as soon as it is safe.

The one streaming verifier every telephony adapter sits on. It feeds each chunk (mu-law, A-law, L16 bytes at
8-48 kHz, or float samples) through :class:`voiceauth.audio.stream.StreamingFrontEnd` (incremental resampling and
Silero VAD), and once ``min_speech_s`` of net speech has arrived it embeds the speech so far, then again after
every ``embed_every_s`` of *new* speech (so CPU per call is bounded by the speech, not by the frame rate):

* early ``ACCEPT`` when the calibrated score reaches the operating point (plus ``accept_margin``);
* early ``REJECT`` when it is below the operating point by more than ``reject_margin``;
* a decision at ``max_speech_s`` whatever the score;
* at the end of the call, the decision on all the speech, or ``NOT_ENOUGH_SPEECH``.

The decision itself is always made by :class:`voiceauth.verification.Verifier` (the same lockout, watchlist and
audit path as uploads); the streaming side only chooses *when* to ask, scoring against the claimed voiceprint read
once per call. An unknown or unusable claim is evaluated at the same moment and with the same work as a mismatch,
so timing does not reveal who is enrolled. Pure logic: the engine, the verifier and the clock are injected.

Liveness (``challenge_id``): the stream answers a digit challenge (``voiceauth.liveness``). Nothing is decided
early; the caller's answer ends after a closing silence (:meth:`StreamingVerifier.answer_ended`, measured from the
end of the last speech segment) and :meth:`~StreamingVerifier.finish` recognises the digits in that speech and
verifies the voice on the same speech (ACCEPT only when both pass; the verifier decides CHALLENGE_FAILED otherwise).
The recognition and the embeddings are prepared once the closing silence is half way (a caller who speaks again
costs one more preparation), so the decision at the end of the silence only scores and records: the heavy work is
off the path from the answer's end to the decision. With a ``preparer`` executor the preparation runs there, on a
copy of the answer's audio, so the thread feeding the call (and every other call sharing it) is not held for it;
the decision waits for it only if it is still running.

Bands: phone streams (G.711, 8 kHz) have the telephone band only, so each evaluation embeds it once, as always. A
wideband stream (``StreamingFrontEnd.speech_wide``) is scored at full band when the claimed voiceprint has one, else
in the telephone band (:func:`voiceauth.verification.scoring_band`); each evaluation embeds only the band it scores,
and the deciding one embeds the other band too (the verifier searches the watchlist in the telephone band and picks
the band itself), so every claim costs the same work on the same stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from voiceauth.audio.stream import StreamingFrontEnd
from voiceauth.config import Settings
from voiceauth.embedding.base import EmbeddingEngine, FloatArray
from voiceauth.errors import ConfigError
from voiceauth.store.repo import Store
from voiceauth.verification import (
    FULL_BAND,
    TELEPHONE_BAND,
    ChallengeAnswer,
    Decision,
    SpoofCheck,
    VerificationResult,
    Verifier,
    scoring_band,
)
from voiceauth.watchlist import resolve_threshold

if TYPE_CHECKING:
    from voiceauth.antispoof.replay import ReplayPolicy
    from voiceauth.antispoof.stream import CallSpoof
    from voiceauth.liveness.recognizer import DigitRecognizer

__all__ = [
    "TELEPHONY_DECISIONS",
    "ClaimView",
    "StreamDecision",
    "StreamingPolicy",
    "StreamingVerifier",
    "load_claim",
    "public_decision",
]

log = logging.getLogger(__name__)

#: what a telephony client may see; NOT_ENROLLED is shown as REJECT (never reveal who is enrolled)
TELEPHONY_DECISIONS = (
    "ACCEPT",
    "REJECT",
    "NOT_ENOUGH_SPEECH",
    "OPTED_OUT",
    "EXPIRED",
    "LOCKED_OUT",
    "SPOOF_SUSPECTED",  # the state only: the spoof score is for security staff
    "CHALLENGE_FAILED",  # the liveness digits were wrong or missing (what was heard is for security staff)
)


def public_decision(decision: Decision | str, *, speech_s: float | None = None, min_speech_s: float = 0.0) -> str:
    """The decision as shown to telephony clients. ``NOT_ENROLLED`` reads as what an enrolled caller with the same
    audio would most plausibly get: ``NOT_ENOUGH_SPEECH`` when there was too little speech, else ``REJECT``."""
    value = Decision(decision).value
    if value != Decision.NOT_ENROLLED.value:
        return value
    if speech_s is not None and speech_s < min_speech_s:
        return Decision.NOT_ENOUGH_SPEECH.value
    return Decision.REJECT.value


@dataclass(frozen=True)
class StreamingPolicy:
    min_speech_s: float = 3.0  # net speech before the first evaluation (the verification minimum)
    embed_every_s: float = 0.5  # new net speech between re-evaluations
    max_speech_s: float = 8.0  # decide here whatever the score
    accept_margin: float = 0.0  # calibrated points above the operating point for an early ACCEPT
    reject_margin: float = 15.0  # calibrated points below the operating point for an early REJECT

    def __post_init__(self) -> None:
        if self.embed_every_s <= 0:
            raise ConfigError(f"embed_every_s must be > 0 seconds, not {self.embed_every_s}")
        if self.max_speech_s < self.min_speech_s:
            raise ConfigError(f"max_speech_s ({self.max_speech_s}) must be at least min_speech_s ({self.min_speech_s})")

    @classmethod
    def from_settings(cls, s: Settings) -> StreamingPolicy:
        return cls(
            min_speech_s=s.verify_min_speech_s,
            embed_every_s=s.stream_embed_every_s,
            max_speech_s=max(s.stream_max_speech_s, s.verify_min_speech_s),
            accept_margin=s.stream_accept_margin,
            reject_margin=s.stream_reject_margin,
        )


@dataclass(frozen=True)
class ClaimView:
    """What the streaming side needs to know when to ask: the claimed voiceprint (None if unusable)."""

    voiceprint: FloatArray | None  # telephone band
    threshold: float
    voiceprint_wide: FloatArray | None = None  # full band (None: the speaker enrolled no full band)


def load_claim(store: Store, tenant: str, external_ref: str, verifier: Verifier) -> ClaimView:
    """Read the claimed speaker's voiceprint and the tenant's operating point once, read-only."""
    with store.transaction() as tx:
        t = tx.tenant(tenant)
        op_name = t.operating_point or verifier.policy.operating_point
        threshold = resolve_threshold(op_name, verifier.operating_points, tx.thresholds(t.id))
        spk = tx.speaker(t.id, external_ref)
        vp = tx.voiceprint(spk) if spk is not None else None
        if vp is None or vp.space != verifier.space:  # another network's voiceprint: the verifier decides EXPIRED
            return ClaimView(voiceprint=None, threshold=threshold)
        return ClaimView(voiceprint=vp.embedding, threshold=threshold, voiceprint_wide=vp.embedding_wide)


@dataclass(frozen=True)
class StreamDecision:
    decision: Decision  # the verifier's own decision (NOT_ENROLLED included; see public_decision)
    speech_seconds: float  # net speech the decision used
    decided_at_ms: int  # position in the call audio (ms received) when it was decided
    early: bool  # decided before the end of the call
    compute_ms: float  # wall time from the deciding chunk's arrival to the decision
    result: VerificationResult  # full result, scores included: security staff only
    min_speech_s: float = 0.0  # the policy's minimum, for :attr:`public`

    @property
    def public(self) -> str:
        return public_decision(self.decision, speech_s=self.speech_seconds, min_speech_s=self.min_speech_s)


@dataclass(frozen=True)
class _AnswerAudio:
    """A copy of a challenge answer's audio so far: what a preparation works on, off the feeding thread."""

    span: FloatArray  # speech with its pauses (the recogniser's input)
    speech: FloatArray  # net speech, telephone band (the embedding's input)
    telephone: bool
    wide: FloatArray | None  # net speech at full band (wideband streams), else None
    embed: bool  # enough speech for a decision: embed it now


@dataclass(frozen=True)
class _Prepared:
    heard: str
    probes: dict[str, FloatArray] = field(default_factory=dict)  # band -> embedding of the answer's net speech


def _heard(recognizer: DigitRecognizer, span: FloatArray, speech: FloatArray, n_digits: int) -> str:
    """The digits in an answer: recognised on its speech with its pauses (net speech when the span is empty)."""
    audio = span if span.size else speech
    return recognizer.recognize(audio, 16000, n_digits).digits if audio.size else ""


def _prepare(audio: _AnswerAudio, recognizer: DigitRecognizer, n_digits: int, engine: EmbeddingEngine) -> _Prepared:
    """Recognise the digits of an answer and embed its speech (pure: safe on any thread)."""
    heard = _heard(recognizer, audio.span, audio.speech, n_digits)
    probes: dict[str, FloatArray] = {}
    if audio.embed:
        probes[TELEPHONE_BAND] = engine.embed(audio.speech, 16000, telephone=audio.telephone)
        if audio.wide is not None:
            probes[FULL_BAND] = engine.embed(audio.wide, 16000, telephone=False)
    return _Prepared(heard, probes)


class StreamingVerifier:
    """One call leg's streaming verification. Not thread-safe: feed it from one task or thread."""

    def __init__(
        self,
        *,
        frontend: StreamingFrontEnd,
        engine: EmbeddingEngine,
        verifier: Verifier,
        tenant: str,
        speaker_ref: str,
        call_id: str = "",
        policy: StreamingPolicy | None = None,
        claim: ClaimView | Callable[[], ClaimView] | None = None,
        actor: str = "ivr",
        clock: Callable[[], float] = time.perf_counter,
        spoof: CallSpoof | None = None,
        replay: ReplayPolicy | None = None,
        challenge_id: str | None = None,
        challenge_digits: int = 0,
        recognizer: DigitRecognizer | None = None,
        answer_end_silence_ms: int = 1200,
        min_answer_speech_s: float = 0.5,
        preparer: Executor | None = None,
    ) -> None:
        if challenge_id is not None and (recognizer is None or challenge_digits <= 0):
            raise ConfigError("a stream answering a challenge needs a digit recogniser and the challenge's length")
        self.frontend = frontend
        self.engine = engine
        self.verifier = verifier
        self.tenant = tenant
        self.speaker_ref = speaker_ref
        self.call_id = call_id
        self.policy = policy or StreamingPolicy(min_speech_s=verifier.policy.min_speech_s)
        self._claim_src = claim
        self._claim: ClaimView | None = claim if isinstance(claim, ClaimView) else None
        self.actor = actor
        self.clock = clock
        self.spoof = spoof  # AASIST windows as speech arrives (voiceauth.antispoof.stream); None: not scored
        self.replay = replay  # the replay check of the deciding speech against the speaker's earlier attempts
        self.decision: StreamDecision | None = None
        self.evaluations = 0  # embeddings computed (CPU spent per call)
        self._next_eval_s = self.policy.min_speech_s
        self._probes_at = -1.0  # net speech the cached embeddings were computed at
        self._probes: dict[str, FloatArray] = {}  # band -> embedding of the speech so far
        self.challenge_id = challenge_id
        self.challenge_digits = challenge_digits
        self.recognizer = recognizer
        self.heard: str | None = None  # the digits recognised in the answer (security staff only)
        self.answer_end_silence_ms = answer_end_silence_ms
        self.min_answer_speech_s = min_answer_speech_s
        self.preparations = 0  # answers recognised (more than 1: the caller spoke again after a pause)
        self.preparer = preparer  # where answers are prepared (None: on the feeding thread)
        self._speech_seen_s = 0.0
        self._prepared: tuple[tuple[float, int], Future[_Prepared]] | None = None  # (speech key, preparation)

    # -- input ------------------------------------------------------------------------------------------
    def feed(self, chunk: bytes | bytearray | memoryview | npt.ArrayLike) -> StreamDecision | None:
        """Add one chunk; return the decision if this chunk made it (None otherwise, and after a decision)."""
        if self.decision is not None:
            return None
        t0 = self.clock()
        self.frontend.feed(chunk)
        speech_s = self.frontend.net_speech_s
        if self.spoof is not None:
            self.spoof.observe(int(speech_s * 16000), self.frontend.speech_span)  # speech with its pauses
        if self.challenge_id is not None:  # decided on the whole answer only (finish)
            self._speech_seen_s = max(self._speech_seen_s, speech_s)
            if (
                self._speech_seen_s >= self.min_answer_speech_s
                and self.frontend.trailing_silence_s * 1000 >= self.answer_end_silence_ms / 2
            ):
                self._prepare_answer()
            return None
        if speech_s + 1e-9 < self._next_eval_s:
            return None
        return self._evaluate(speech_s, t0, final=False)

    def answer_ended(self) -> bool:
        """A challenge answer is complete: at least ``min_answer_speech_s`` of speech, then
        ``answer_end_silence_ms`` of audio after the last speech segment (or the most speech a decision uses)."""
        if self.challenge_id is None or self.decision is not None:
            return False
        if self._speech_seen_s >= self.policy.max_speech_s:
            return True
        return (
            self._speech_seen_s >= self.min_answer_speech_s
            and self.frontend.trailing_silence_s * 1000 >= self.answer_end_silence_ms
        )

    def _audio_to_answer_end_s(self) -> float:
        """The least audio still to come before :meth:`answer_ended` can become true."""
        to_max = self.policy.max_speech_s - self._speech_seen_s
        end_s = self.answer_end_silence_ms / 1000
        if self._speech_seen_s < self.min_answer_speech_s:
            until = self.min_answer_speech_s - self._speech_seen_s + end_s
        else:
            until = end_s - self.frontend.trailing_silence_s
        return max(0.0, min(to_max, until))

    def _answer_key(self) -> tuple[float, int]:
        return (round(self.frontend.net_speech_s, 6), self.frontend.speech_span().size)

    def _prepare_answer(self) -> None:
        """Recognise the answer so far and embed its speech (on ``preparer`` when given), unless done for this much
        speech already."""
        key = self._answer_key()
        if self._prepared is not None and self._prepared[0] == key:
            return
        if self._prepared is not None:
            self._prepared[1].cancel()  # an earlier part of the answer: the caller spoke again
        assert self.recognizer is not None
        audio = self._answer_audio()
        self.preparations += 1
        if audio.embed:
            self.evaluations += 1 if audio.wide is None else 2
        if self.preparer is not None:
            fut = self.preparer.submit(_prepare, audio, self.recognizer, self.challenge_digits, self.engine)
        else:
            fut = Future()
            fut.set_result(_prepare(audio, self.recognizer, self.challenge_digits, self.engine))
        self._prepared = (key, fut)

    def _answer_audio(self) -> _AnswerAudio:
        fe = self.frontend
        wide = fe.speech_wide()
        return _AnswerAudio(
            span=np.array(fe.speech_span(), dtype=np.float32, copy=True),
            speech=np.array(fe.speech(), dtype=np.float32, copy=True),
            telephone=fe.speech_is_telephone,
            wide=None if wide is None else np.array(wide, dtype=np.float32, copy=True),
            embed=fe.net_speech_s >= self.verifier.policy.min_speech_for(challenge=True),
        )

    def _adopt_prepared(self) -> _Prepared | None:
        """The preparation of the answer as it now stands (waiting for it if it is running), its embeddings taken
        into the cache; None when there is none for this much speech."""
        if self._prepared is None:
            return None
        key, fut = self._prepared
        if key != self._answer_key():
            return None
        try:
            prepared = fut.result()
        except CancelledError:  # the preparer was shut down: recompute on this thread
            self._prepared = None
            return None
        if prepared.probes and abs(self._probes_at - self.frontend.net_speech_s) >= 1e-6:
            self._probes_at, self._probes = self.frontend.net_speech_s, dict(prepared.probes)
        return prepared

    def _answer(self) -> ChallengeAnswer | None:
        if self.challenge_id is None:
            return None
        prepared = self._adopt_prepared()
        if prepared is not None:
            heard = prepared.heard
        else:
            assert self.recognizer is not None
            fe = self.frontend
            heard = _heard(self.recognizer, fe.speech_span(), fe.speech(), self.challenge_digits)
        self.heard = heard
        return ChallengeAnswer(self.challenge_id, heard)

    def finish(self) -> StreamDecision:
        """End of the call audio (or of a challenge answer): the decision made so far, or the one on all the speech
        received."""
        if self.decision is not None:
            return self.decision
        t0 = self.clock()
        self.frontend.finish()
        speech_s = self.frontend.net_speech_s
        if self.challenge_id is not None:
            self._adopt_prepared()  # its embeddings, before the decision asks for them
        minimum = self.verifier.policy.min_speech_for(challenge=self.challenge_id is not None)
        if speech_s >= minimum:
            decided = self._evaluate(speech_s, t0, final=True)
            assert decided is not None
            return decided
        result = self.verifier.verify(
            self.tenant,
            self.speaker_ref,
            None,
            net_speech_s=speech_s,
            narrowband=self.frontend.narrowband,
            call_id=self.call_id,
            actor=self.actor,
            challenge=self._answer(),
        )
        return self._decide(result, speech_s, t0, early=False)

    @property
    def speech_seconds(self) -> float:
        return self.frontend.net_speech_s

    @property
    def speech_to_next_evaluation_s(self) -> float:
        """Net speech still to come before the next evaluation (0 when one is due, infinite once decided); for a
        challenge answer, the least audio before the answer can end (:meth:`answer_ended`).

        Speech cannot arrive faster than the audio, so a caller may gather about this much audio before feeding it
        without delaying any decision (the IVR feeds large blocks while far from an evaluation, small ones near it).
        """
        if self.decision is not None:
            return float("inf")
        if self.challenge_id is not None:
            return self._audio_to_answer_end_s()
        return max(0.0, self._next_eval_s - self.frontend.net_speech_s)

    @property
    def received_ms(self) -> int:
        return int(round(self.frontend.duration_s * 1000))

    # -- internals --------------------------------------------------------------------------------------
    def _claim_view(self) -> ClaimView:
        if self._claim is None:
            if callable(self._claim_src):
                self._claim = self._claim_src()
            else:
                self._claim = load_claim(self.verifier.store, self.tenant, self.speaker_ref, self.verifier)
        return self._claim

    def _embed(self, speech_s: float, bands: tuple[str, ...], speech_wide: FloatArray | None) -> dict[str, FloatArray]:
        """The embeddings of the speech so far in ``bands`` (cached per amount of speech), each band by its network."""
        if abs(self._probes_at - speech_s) >= 1e-6:
            self._probes_at, self._probes = speech_s, {}
        missing = [b for b in bands if b not in self._probes]
        if missing:
            for band in missing:  # each band through its own network (telephone band: the adapted one)
                if band == TELEPHONE_BAND:
                    wav, telephone = self.frontend.speech(), self.frontend.speech_is_telephone
                elif speech_wide is not None:
                    wav, telephone = speech_wide, False
                else:
                    raise ValueError("a full-band embedding was asked of a stream without a full band")
                self._probes[band] = self.engine.embed(wav, 16000, telephone=telephone)
            self.evaluations += len(missing)
        return self._probes

    def _spoof_check(self) -> SpoofCheck | None:
        """The call's AASIST result (when scored) and the replay check of its speech, for the verifier."""
        if self.spoof is None and self.replay is None:
            return None
        from voiceauth.antispoof.check import make_check

        spoof = self.spoof.result(self.frontend.speech_span()) if self.spoof is not None else None
        clock = self.verifier.store.clock
        return make_check(
            self.frontend.speech(),
            spoof=spoof,
            mode=self.spoof.mode if self.spoof is not None else "off",
            replay=self.replay,
            now=lambda: clock().timestamp(),
        )

    def _evaluate(self, speech_s: float, t0: float, *, final: bool) -> StreamDecision | None:
        p = self.policy
        self._next_eval_s = speech_s + p.embed_every_s
        narrowband = self.frontend.narrowband
        speech_wide = self.frontend.speech_wide()  # None for phone streams
        all_bands = (TELEPHONE_BAND,) if speech_wide is None else (TELEPHONE_BAND, FULL_BAND)
        claim = self._claim_view()
        if not final and speech_s < p.max_speech_s and claim.voiceprint is not None:
            band = scoring_band(probe_wide=speech_wide is not None, voiceprint_wide=claim.voiceprint_wide is not None)
            probe = self._embed(speech_s, (band,), speech_wide)[band]
            reference = claim.voiceprint_wide if band == FULL_BAND else claim.voiceprint
            assert reference is not None
            score = self.verifier.scorer.score(
                reference, probe, narrowband=band == TELEPHONE_BAND, probe_speech_s=speech_s
            ).calibrated
            confident = score >= claim.threshold + p.accept_margin or score < claim.threshold - p.reject_margin
            if not confident:
                return None
        probes = self._embed(speech_s, all_bands, speech_wide)
        result = self.verifier.verify(
            self.tenant,
            self.speaker_ref,
            probes[TELEPHONE_BAND],
            probe_wide=probes.get(FULL_BAND),
            net_speech_s=speech_s,
            narrowband=narrowband,
            call_id=self.call_id,
            actor=self.actor,
            spoof_check=self._spoof_check(),
            challenge=self._answer() if final else None,
        )
        if self.spoof is not None:
            self.spoof.settle(result, self.verifier, self.tenant)  # monitor: a late score is recorded when ready
        return self._decide(result, speech_s, t0, early=not final)

    def _decide(self, result: VerificationResult, speech_s: float, t0: float, *, early: bool) -> StreamDecision:
        self.decision = StreamDecision(
            decision=result.decision,
            speech_seconds=round(speech_s, 3),
            decided_at_ms=self.received_ms,
            early=early,
            compute_ms=(self.clock() - t0) * 1000.0,
            result=result,
            min_speech_s=self.verifier.policy.min_speech_for(challenge=self.challenge_id is not None)
            if self.challenge_id is not None
            else self.policy.min_speech_s,
        )
        log.info(
            "stream call=%s decision=%s speech=%.2fs at=%dms early=%s evaluations=%d",
            self.call_id or "-",
            result.decision.value,
            speech_s,
            self.decision.decided_at_ms,
            early,
            self.evaluations,
        )
        return self.decision
