"""The provider-neutral call events every telephony serializer translates to and from.

A serializer turns one WebSocket frame into at most one :class:`CallEvent` (``deserialize``) and one outbound
event into the frames the provider expects (``serialize``). Serializers are pure: no sockets, no clocks, no store.
A frame the protocol forbids raises :class:`ProtocolError`, which ends that call (and only that call).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from voiceauth.errors import VoiceAuthError

__all__ = [
    "AudioIn",
    "CallEvent",
    "CallStart",
    "CallStop",
    "ChallengeOut",
    "DecisionOut",
    "DigitIn",
    "EnrollmentOut",
    "Frame",
    "HangupOut",
    "MarkIn",
    "OutEvent",
    "PromptOut",
    "ProtocolError",
    "Reply",
    "Serializer",
]

Frame = str | bytes


class ProtocolError(VoiceAuthError):
    """A frame the provider's protocol does not allow (bad JSON, unknown event, bad base64, wrong order)."""

    code = "ivr-protocol-error"


# -- inbound ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CallStart:
    call_id: str  # Twilio callSid, AudioHook session id, L16 metadata call id
    encoding: str  # "mulaw" | "alaw" | "l16"
    sample_rate: int
    channels: int = 1
    channel: int = 0  # the customer's channel within interleaved audio
    speaker_ref: str = ""  # claimed customer reference ("" = identify by ANI or DTMF)
    ani: str = ""
    params: dict[str, str] = field(default_factory=dict)
    two_way: bool = True  # the service may send audio back
    probe: bool = False  # a connection probe: no verification, no outcome
    ack: tuple[Frame, ...] = ()  # protocol frames to send at once, before anything else (AudioHook ``opened``)


@dataclass(frozen=True)
class AudioIn:
    payload: bytes  # raw audio in the CallStart encoding (interleaved when channels > 1)


@dataclass(frozen=True)
class DigitIn:
    digit: str


@dataclass(frozen=True)
class MarkIn:
    name: str


@dataclass(frozen=True)
class CallStop:
    reason: str = "stop"


@dataclass(frozen=True)
class Reply:
    """Frames the protocol itself answers with at once (pong, opened, closed); no call logic involved."""

    frames: tuple[Frame, ...]
    then_close: bool = False


CallEvent = CallStart | AudioIn | DigitIn | MarkIn | CallStop | Reply


# -- outbound -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DecisionOut:
    decision: str  # a telephony decision (never a score)
    speech_seconds: float
    decided_at_ms: int
    call_id: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EnrollmentOut:
    enrolled: bool  # a usable voiceprint exists now
    progress: float  # 0-100
    feedback: tuple[str, ...]  # quality codes (OK, TOO_SHORT, ...)
    call_id: str = ""


@dataclass(frozen=True)
class PromptOut:
    name: str
    pcm16: bytes  # 16-bit little-endian mono at ``sample_rate``
    sample_rate: int


@dataclass(frozen=True)
class ChallengeOut:
    """A liveness challenge the caller must answer (the IVR speaks it too where it can send audio). The platform may
    know the digits: the caller hears them anyway; only a fresh answer in the caller's voice passes."""

    digits: str
    attempt: int = 1
    call_id: str = ""


@dataclass(frozen=True)
class HangupOut:
    reason: str = "completed"  # completed | error | unauthorized


OutEvent = DecisionOut | EnrollmentOut | PromptOut | ChallengeOut | HangupOut


class Serializer(Protocol):
    name: str

    def deserialize(self, data: Frame) -> CallEvent | None: ...

    def serialize(self, event: OutEvent) -> list[Frame]: ...
