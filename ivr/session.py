"""One call's logic behind any protocol: the customer's channel -> streaming verifier, DTMF, the call flow, outcome.

:class:`CallSession` implements :class:`ivr.transport.CallHandler`. It picks the customer's channel out of
interleaved audio, keeps the call's audio clock, feeds the :class:`voiceauth.streaming.StreamingVerifier` while
the flow is verifying (for a liveness step: on the caller's answer to a fresh digit challenge, which the session
issues and speaks, decided after the answer's closing silence), runs in-band DTMF detection while the flow collects
digits, drives the flow machine and turns its actions into outbound events (prompts, the decision). It records the
outcome in the registry as soon as there is a decision and again at the end, and posts the final outcome to the
webhook.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from enrollment.policy import screen_quality
from ivr.calls import CallOutcome
from ivr.dtmf import DtmfDetector
from ivr.flows.machine import Action, CheckPin, FlowMachine, Hangup, Play, StartChallenge, StartVoice, Transfer
from ivr.serializers.base import CallStart, ChallengeOut, DecisionOut, EnrollmentOut, OutEvent, PromptOut
from ivr.transport import CallRefused
from voiceauth.audio.codecs import alaw_decode, l16_decode, mulaw_decode
from voiceauth.audio.stream import StreamingFrontEnd
from voiceauth.errors import AlreadyExists, ConsentRequired, VoiceAuthError
from voiceauth.pipeline import embed_bands
from voiceauth.streaming import StreamDecision, StreamingVerifier

if TYPE_CHECKING:
    from ivr.service import IvrService

__all__ = ["CallSession"]

log = logging.getLogger(__name__)

_DECODERS = {"mulaw": mulaw_decode, "alaw": alaw_decode, "l16": l16_decode}
_MAX_BLOCK_S = 1.0  # largest audio block while the verifier is far from an evaluation (or enrolling)
_DECIDED_BLOCK_S = 0.5  # after the decision only the flow's timers need the audio clock
_EVAL_MARGIN_S = 0.15  # VAD padding can add speech slightly faster than real time


def _locked(fn: Callable[..., Sequence[OutEvent]]) -> Callable[..., Sequence[OutEvent]]:
    """One call's handler methods run one at a time, whichever thread calls them."""

    @functools.wraps(fn)
    def wrapper(self: CallSession, *args: object) -> Sequence[OutEvent]:
        with self._lock:
            return fn(self, *args)

    return wrapper


class CallSession:
    def __init__(self, service: IvrService, start: CallStart, *, tenant: str, protocol: str) -> None:
        self.service = service
        self.start = start
        self.tenant = tenant
        self.protocol = protocol
        self.width = 2 if start.encoding == "l16" else 1
        self.rate = start.sample_rate
        self.samples = 0  # per channel
        self._carry = b""
        self.flow = FlowMachine(service.flow)
        self.verifier: StreamingVerifier | None = None
        self.dtmf = DtmfDetector(self.rate)
        self.finished = False
        self.outcome = CallOutcome(call_id=start.call_id, tenant=tenant, protocol=protocol)
        self._decision: StreamDecision | None = None
        self._lock = threading.RLock()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._feed_bytes = self.width * self.rate * service.settings.ivr_feed_ms // 1000
        self._block_bytes = 0 if start.probe else self._feed_bytes * max(1, start.channels)
        self._ended = False
        self.enrolment: StreamingFrontEnd | None = None
        self._challenges = 0  # liveness challenges issued in this call

    @property
    def audio_block_bytes(self) -> int:
        """How much audio (all channels) the transport should gather before the next :meth:`on_audio`.

        ``ivr_feed_ms`` while anything may happen at short notice (digits, the greeting, a voice decision near),
        larger blocks (up to ``_MAX_BLOCK_S``) while the verifier is far from its next evaluation or done: fewer
        worker hops and VAD calls per second without delaying a decision (see :meth:`_plan_block`).
        """
        return self._block_bytes

    def _plan_block(self) -> None:
        """Choose the next block size (called at the end of each handler method, under the call's lock)."""
        feed_s = self._feed_bytes / (self.width * self.rate)
        block_s = feed_s
        v = self.verifier
        if self.start.probe or self.finished:
            return
        if self.enrolment is not None:
            block_s = _MAX_BLOCK_S
        elif self.flow.collecting or v is None:
            block_s = feed_s
        elif v.decision is None:
            ahead = v.speech_to_next_evaluation_s - _EVAL_MARGIN_S
            deadline = self.flow.voice_deadline_ms
            if deadline is not None:
                ahead = min(ahead, (deadline - self.now_ms) / 1000)
            block_s = min(_MAX_BLOCK_S, max(feed_s, ahead))
        else:
            block_s = _DECIDED_BLOCK_S
        per_s = self.width * self.rate * max(1, self.start.channels)
        self._block_bytes = max(self.width, int(block_s * per_s) // self.width * self.width)

    @property
    def now_ms(self) -> int:
        return int(self.samples * 1000 // self.rate)

    # -- CallHandler --------------------------------------------------------------------------------------------
    @_locked
    def opening(self) -> Sequence[OutEvent]:
        if self.start.probe:
            return []
        ref = self.start.speaker_ref or self.service.lookup_ani(self.tenant, self.start.ani)
        self.outcome.speaker_id = ref
        if self.start.params.get("mode") == "enroll":
            out = self._begin_enrolment(ref)
            self._plan_block()
            return out
        log.info(
            "call %s started (%s, %s %d Hz x%d)",
            self.start.call_id,
            self.protocol,
            self.start.encoding,
            self.rate,
            self.start.channels,
        )
        out = self._act(self.flow.start(speaker_ref=ref, now_ms=0))
        self._plan_block()
        return out

    @_locked
    def on_audio(self, payload: bytes) -> Sequence[OutEvent]:
        if self.start.probe or self.finished:
            return []
        mono = self._customer_channel(payload)
        if not mono:
            return []
        self.samples += len(mono) // self.width
        out: list[OutEvent] = []
        if self.enrolment is not None:
            self.enrolment.feed(mono)
        if self.verifier is not None and self.verifier.decision is None:
            self._pending.append(mono)
            self._pending_bytes += len(mono)
            if self._pending_bytes >= self._feed_bytes:
                out.extend(self._feed_pending())
        v = self.verifier
        if v is not None and self._decision is None and v.answer_ended():
            out.extend(self._feed_pending())
            if self._decision is None:
                out.extend(self._on_decision(v.finish()))
        if self.flow.collecting:
            for digit in self.dtmf.feed(_DECODERS[self.start.encoding](mono)):
                out.extend(self.on_digit(digit))
        deadline = self.flow.voice_deadline_ms
        if deadline is not None and self.now_ms >= deadline and self.verifier is not None and self._decision is None:
            out.extend(self._feed_pending())
            if self._decision is None:
                out.extend(self._on_decision(self.verifier.finish()))
        out.extend(self._act(self.flow.tick(self.now_ms)))
        self._plan_block()
        return out

    @_locked
    def on_digit(self, digit: str) -> Sequence[OutEvent]:
        log.info("call %s: digit received", self.start.call_id)  # never the digit itself (PINs)
        out = self._act(self.flow.digit(digit, self.now_ms))
        self._plan_block()
        return out

    @_locked
    def on_mark(self, name: str) -> Sequence[OutEvent]:
        return []

    @_locked
    def end(self, reason: str) -> Sequence[OutEvent]:
        out: list[OutEvent] = []
        if self.start.probe or self._ended:
            return out
        self._ended = True
        if self.verifier is not None and self._decision is None:
            try:
                out.extend(self._feed_pending())
                if self._decision is None:
                    out.extend(self._on_decision(self.verifier.finish()))
            except VoiceAuthError as exc:  # still record how the call ended
                log.warning("call %s: no decision at the end: %s", self.start.call_id, exc)
                reason = f"{reason}; no decision ({exc.code})"
        if self.enrolment is not None:
            out.extend(self._finish_enrolment())
        self.outcome.end_reason = reason
        if self.outcome.flow_outcome in ("", "enrolling"):
            self.outcome.flow_outcome = self.flow.outcome or ("verified" if self.flow.method else "")
        self.outcome.method = self.flow.method
        self.outcome.ended_at = dt.datetime.now(dt.UTC).isoformat()
        self.service.record(self.outcome, final=True)
        log.info(
            "call %s ended: reason=%s decision=%s flow=%s",
            self.start.call_id,
            reason,
            self.outcome.decision,
            self.outcome.flow_outcome,
        )
        return out

    # -- passive enrolment (an agent-assisted call, with the caller's consent) ------------------------------------
    def _begin_enrolment(self, ref: str) -> list[OutEvent]:
        enroller = self.service.enroller
        if enroller is None or not ref:
            raise CallRefused("this service does not enrol during calls, or no speaker_id was given", "error")
        if self.start.params.get("consent") == "yes":
            try:
                enroller.register(
                    self.tenant,
                    ref,
                    consent_method="ivr-agent",
                    consent_text_version=self.start.params.get("consent_version", "ivr-v1"),
                    actor=f"ivr:{self.protocol}",
                )
            except AlreadyExists:
                pass  # registered before: its own consent record decides
        self.enrolment = self.service.new_frontend(self.start)
        self.outcome.flow_outcome = "enrolling"
        return []

    def _finish_enrolment(self) -> list[OutEvent]:
        assert self.enrolment is not None and self.service.enroller is not None
        utt = self.enrolment.finish()
        fe, self.enrolment = self.enrolment, None
        enroller = self.service.enroller
        usable = utt.speech.size > 0 and not screen_quality(utt.quality, enroller.policy)
        emb, wide = embed_bands(self.service.engine, utt) if usable else (None, None)  # no full band on phone lines
        try:
            res = enroller.enroll(
                self.tenant,
                self.outcome.speaker_id,
                emb,
                utt.quality,
                narrowband=fe.narrowband,
                embedding_wide=wide,
                actor=f"ivr:{self.protocol}",
            )
        except ConsentRequired as exc:
            log.warning("call %s: enrolment refused: %s", self.start.call_id, exc)
            self.outcome.flow_outcome = "enrolment-refused"
            return [EnrollmentOut(False, 0.0, ("CONSENT_REQUIRED",), self.start.call_id)]
        self.outcome.flow_outcome = "enrolled" if res.enrolled else "enrolment-incomplete"
        self.outcome.speech_seconds = round(utt.quality.net_speech_s, 3)
        return [EnrollmentOut(res.enrolled, res.progress, tuple(res.feedback), self.start.call_id)]

    # -- internals ----------------------------------------------------------------------------------------------
    def _feed_pending(self) -> list[OutEvent]:
        """Feed the buffered customer audio to the verifier (blocks of ``ivr_feed_ms`` keep per-call CPU low)."""
        if self.verifier is None or not self._pending:
            return []
        block = b"".join(self._pending)
        self._pending, self._pending_bytes = [], 0
        decided = self.verifier.feed(block)
        return self._on_decision(decided) if decided is not None else []

    def _customer_channel(self, payload: bytes) -> bytes:
        ch = self.start.channels
        if ch <= 1:
            return payload
        data = self._carry + payload
        frame = self.width * ch
        cut = len(data) - len(data) % frame
        self._carry = data[cut:]
        arr = np.frombuffer(data[:cut], dtype=np.uint8).reshape(-1, ch, self.width)
        return arr[:, self.start.channel, :].tobytes()

    def _on_decision(self, decided: StreamDecision) -> list[OutEvent]:
        if self._decision is not None:
            return []
        self._decision = decided
        public = decided.public
        self.outcome.decision = public
        self.outcome.speech_seconds = decided.speech_seconds
        self.outcome.decided_at_ms = decided.decided_at_ms
        r = decided.result
        self.outcome.staff = {
            "internal_decision": r.decision.value,
            "score": r.score,
            "threshold": r.threshold,
            "operating_point": r.operating_point,
            "watchlist_hit": r.watchlist_hit.label if r.watchlist_hit else None,
            "attempt_id": r.attempt_id,
            "spoof_score": r.spoof_score,  # AASIST log-odds (None: not scored, or a monitor score still coming)
            "spoof_threshold": r.spoof_threshold,
            "spoof_reason": r.spoof_reason,  # replay | synthetic when suspected
            "early": decided.early,
            "compute_ms": round(decided.compute_ms, 1),
        }
        if self.verifier is not None and self.verifier.challenge_id is not None:  # staff only: what was heard
            self.outcome.staff |= {
                "challenges": self._challenges,
                "challenge_result": r.challenge_result,
                "challenge_heard": self.verifier.heard,
            }
        self.service.record(self.outcome, final=False)
        out: list[OutEvent] = [
            DecisionOut(public, decided.speech_seconds, decided.decided_at_ms, call_id=self.start.call_id)
        ]
        out.extend(self._act(self.flow.voice(public, self.now_ms)))
        return out

    def _start_challenge(self, a: StartChallenge) -> list[OutEvent]:
        """Issue a fresh challenge, speak it (two-way streams; the platform is told the digits either way) and
        verify the answer with a new stream verifier: only the speech after it counts."""
        self.outcome.speaker_id = a.speaker_ref
        ch = self.service.issue_challenge(self.tenant, a.speaker_ref, self.start.call_id)
        self.verifier = self.service.new_verifier(self.start, self.tenant, a.speaker_ref, challenge=ch)
        self._decision = None
        self._pending, self._pending_bytes = [], 0
        self._challenges += 1
        log.info("call %s: liveness challenge %d issued", self.start.call_id, a.attempt)  # never the digits
        out: list[OutEvent] = [ChallengeOut(ch.digits, a.attempt, call_id=self.start.call_id)]
        if self.start.two_way:
            out.append(PromptOut("challenge", self.service.prompts.digits(ch.digits, attempt=a.attempt), 8000))
        return out

    def _act(self, actions: Sequence[Action]) -> list[OutEvent]:
        out: list[OutEvent] = []
        for a in actions:
            if isinstance(a, Play):
                if self.start.two_way:
                    out.append(PromptOut(a.prompt, self.service.prompts.pcm16(a.prompt), 8000))
            elif isinstance(a, StartVoice):
                self.outcome.speaker_id = a.speaker_ref
                if self.verifier is None:
                    self.verifier = self.service.new_verifier(self.start, self.tenant, a.speaker_ref)
            elif isinstance(a, StartChallenge):
                out.extend(self._start_challenge(a))
            elif isinstance(a, CheckPin):
                ok = self.service.pins.check(self.tenant, a.speaker_ref, a.pin)
                out.extend(self._act(self.flow.pin_result(ok, self.now_ms)))
            elif isinstance(a, Transfer):
                log.info("call %s: transfer to an agent", self.start.call_id)
            elif isinstance(a, Hangup):
                # two-way streams end here (Twilio moves on to the next TwiML verb); a monitoring stream
                # (AudioHook, a one-way fork) belongs to the platform, which closes it when the call ends
                self.finished = self.start.two_way
        return out
