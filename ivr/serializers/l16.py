"""Generic L16 WebSocket (Vonage Voice API ``websocket`` endpoint, FreeSWITCH mod_audio_fork / mod_audio_stream).

Spec: https://developer.vonage.com/en/voice/voice-api/concepts/websockets - the first frame is text JSON metadata
with ``content-type`` ``audio/l16;rate=8000|16000`` (plus the application's own headers), then binary frames of
16-bit little-endian signed PCM, mono, 20 ms each (320 bytes at 8 kHz, 640 at 16 kHz). Rates 8-48 kHz are accepted.

Metadata fields read here: ``speaker_id`` (the claimed customer reference), ``call_id`` (else ``uuid`` or
``conversation_uuid``), ``from`` (ANI). Later text frames may carry ``{"event": "websocket:dtmf", "digit": "5"}``
(Vonage; ``"dtmf"`` accepted too) or ``{"event": "stop"}``. The service answers with text JSON
``{"event": "decision", ...}`` and may play prompts back as binary L16 frames at the stream's rate.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import numpy as np

from ivr.serializers.base import (
    AudioIn,
    CallEvent,
    CallStart,
    CallStop,
    ChallengeOut,
    DecisionOut,
    DigitIn,
    EnrollmentOut,
    Frame,
    HangupOut,
    OutEvent,
    PromptOut,
    ProtocolError,
)
from voiceauth.audio.codecs import l16_decode, l16_encode
from voiceauth.audio.resample import resample

__all__ = ["L16Serializer", "parse_content_type"]

_CT = re.compile(r"^\s*audio/l16\s*(?:;\s*rate\s*=\s*(\d+))?\s*(?:;.*)?$", re.IGNORECASE)
_RATES = (8000, 16000, 24000, 32000, 44100, 48000)


def parse_content_type(value: str) -> int:
    """``audio/l16;rate=16000`` -> 16000 (no rate means 8000)."""
    m = _CT.match(value or "")
    if m is None:
        raise ProtocolError(f"content-type {value!r} is not supported; use audio/l16;rate=8000 or 16000")
    rate = int(m.group(1) or 8000)
    if rate not in _RATES:
        raise ProtocolError(f"L16 rate {rate} Hz is not supported; use one of {', '.join(map(str, _RATES))}")
    return rate


class L16Serializer:
    name = "l16"

    def __init__(self) -> None:
        self.started = False
        self.sample_rate = 16000
        self.metadata: dict[str, Any] = {}

    def deserialize(self, data: Frame) -> CallEvent | None:
        if isinstance(data, bytes):
            if not self.started:
                raise ProtocolError("binary audio before the JSON metadata frame")
            if len(data) % 2:
                raise ProtocolError(f"L16 frame of {len(data)} bytes is not a whole number of 16-bit samples")
            return AudioIn(data)
        try:
            msg = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ProtocolError(f"text frame is not JSON ({exc.msg} at {exc.pos})") from exc
        if not isinstance(msg, dict):
            raise ProtocolError("text frame is not a JSON object")
        if not self.started:
            return self._start(msg)
        event = str(msg.get("event", ""))
        if event in ("websocket:dtmf", "dtmf"):
            nested = msg.get("dtmf")
            digit = str(msg.get("digit", nested.get("digit", "") if isinstance(nested, dict) else ""))
            if len(digit) != 1 or digit not in "0123456789*#":
                raise ProtocolError(f"dtmf digit {digit!r} is not one of 0-9 * #")
            return DigitIn(digit)
        if event in ("stop", "websocket:closed"):
            return CallStop("stop")
        raise ProtocolError(f"unknown L16 text event {event!r}; expected websocket:dtmf or stop")

    def _start(self, msg: dict[str, Any]) -> CallStart:
        ct = msg.get("content-type", msg.get("content_type", "audio/l16;rate=16000"))
        self.sample_rate = parse_content_type(str(ct))
        self.metadata = msg
        self.started = True
        call_id = str(msg.get("call_id") or msg.get("uuid") or msg.get("conversation_uuid") or uuid.uuid4())
        return CallStart(
            call_id=call_id,
            encoding="l16",
            sample_rate=self.sample_rate,
            speaker_ref=str(msg.get("speaker_id", "")),
            ani=str(msg.get("from", "")),
            params={k: str(v) for k, v in msg.items() if isinstance(v, str | int | float) and k != "api_key"},
        )

    def serialize(self, event: OutEvent) -> list[Frame]:
        if isinstance(event, DecisionOut):
            return [
                json.dumps(
                    {
                        "event": "decision",
                        "call_id": event.call_id,
                        "decision": event.decision,
                        "speech_seconds": event.speech_seconds,
                        "decided_at_ms": event.decided_at_ms,
                        **event.extra,
                    }
                )
            ]
        if isinstance(event, PromptOut):
            samples = l16_decode(event.pcm16)
            if event.sample_rate != self.sample_rate:
                samples = resample(samples, event.sample_rate, self.sample_rate)
            pcm = l16_encode(np.clip(samples, -1.0, 1.0))
            step = self.sample_rate // 50 * 2
            return [pcm[i : i + step] for i in range(0, len(pcm), step)]
        if isinstance(event, ChallengeOut):
            return [
                json.dumps(
                    {"event": "challenge", "call_id": event.call_id, "digits": event.digits, "attempt": event.attempt}
                )
            ]
        if isinstance(event, EnrollmentOut):
            body = {"event": "enrollment", "call_id": event.call_id, "enrolled": event.enrolled}
            return [json.dumps({**body, "progress": event.progress, "feedback": list(event.feedback)})]
        if isinstance(event, HangupOut):
            return []
        raise TypeError(f"cannot serialize {type(event).__name__}")
