"""Twilio Media Streams (WebSocket; Twilio is the client). Audio: G.711 mu-law, 8000 Hz, mono, base64 in JSON.

Spec: https://www.twilio.com/docs/voice/media-streams/websocket-messages (messages ``connected``, ``start``,
``media``, ``dtmf``, ``mark``, ``stop`` from Twilio; ``media``, ``mark``, ``clear`` to Twilio on bidirectional
``<Connect><Stream>`` streams). Numbers arrive as strings. Binary frames are a protocol error.

The claimed speaker comes in ``start.customParameters.speaker_id`` (a TwiML ``<Parameter>``); the caller's number
may come in ``customParameters.from`` (ANI). ``customParameters.two_way == "false"`` marks a one-way
``<Start><Stream>`` fork: nothing is sent back on it. Only the ``inbound`` track (the caller) is verified.
Decisions are sent as marks named ``voiceauth:decision:<DECISION>``, after any spoken prompt.
"""

from __future__ import annotations

import base64
import binascii
import json
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
    MarkIn,
    OutEvent,
    PromptOut,
    ProtocolError,
)
from voiceauth.audio.codecs import l16_decode, mulaw_encode
from voiceauth.audio.resample import resample

__all__ = ["CHALLENGE_MARK_PREFIX", "DECISION_MARK_PREFIX", "TwilioSerializer"]

DECISION_MARK_PREFIX = "voiceauth:decision:"
CHALLENGE_MARK_PREFIX = "voiceauth:challenge:"  # + the digits the IVR is about to speak
_ENCODINGS = {"audio/x-mulaw": "mulaw"}
_FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law


def _load(data: Frame) -> dict[str, Any]:
    if isinstance(data, bytes):
        raise ProtocolError("Twilio Media Streams sends text JSON frames only; got a binary frame")
    try:
        msg = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"frame is not JSON ({exc.msg} at {exc.pos})") from exc
    if not isinstance(msg, dict) or not isinstance(msg.get("event"), str):
        raise ProtocolError("frame is not a JSON object with a string 'event'")
    return msg


def _obj(msg: dict[str, Any], key: str) -> dict[str, Any]:
    value = msg.get(key)
    if not isinstance(value, dict):
        raise ProtocolError(f"'{msg['event']}' frame has no '{key}' object")
    return value


class TwilioSerializer:
    name = "twilio"

    def __init__(self) -> None:
        self.stream_sid = ""
        self.started = False
        self.two_way = True

    def deserialize(self, data: Frame) -> CallEvent | None:
        msg = _load(data)
        event = msg["event"]
        if event == "connected":
            return None
        if event == "start":
            return self._start(msg)
        if not self.started and event in ("media", "dtmf", "mark"):
            raise ProtocolError(f"'{event}' before 'start'")
        if event == "media":
            media = _obj(msg, "media")
            if media.get("track", "inbound") != "inbound":
                return None
            payload = media.get("payload")
            if not isinstance(payload, str):
                raise ProtocolError("'media' frame has no base64 'payload' string")
            try:
                return AudioIn(base64.b64decode(payload, validate=True))
            except (binascii.Error, ValueError) as exc:
                raise ProtocolError("'media.payload' is not valid base64") from exc
        if event == "dtmf":
            digit = str(_obj(msg, "dtmf").get("digit", ""))
            if len(digit) != 1 or digit not in "0123456789*#ABCD":
                raise ProtocolError(f"'dtmf.digit' {digit!r} is not one of 0-9 * # A-D")
            return DigitIn(digit)
        if event == "mark":
            return MarkIn(str(_obj(msg, "mark").get("name", "")))
        if event == "stop":
            return CallStop("stop")
        raise ProtocolError(f"unknown Twilio event {event!r}; expected connected, start, media, dtmf, mark or stop")

    def _start(self, msg: dict[str, Any]) -> CallStart:
        if self.started:
            raise ProtocolError("a second 'start' frame on the same stream")
        start = _obj(msg, "start")
        fmt = start.get("mediaFormat") or {}
        if not isinstance(fmt, dict):
            raise ProtocolError("start.mediaFormat must be an object")
        encoding = _ENCODINGS.get(str(fmt.get("encoding", "audio/x-mulaw")))
        if encoding is None:
            raise ProtocolError(f"mediaFormat.encoding {fmt.get('encoding')!r} is not supported; use audio/x-mulaw")
        try:
            rate = int(fmt.get("sampleRate", 8000))
            channels = int(fmt.get("channels", 1))
        except (TypeError, ValueError) as exc:
            raise ProtocolError("mediaFormat.sampleRate and channels must be numbers") from exc
        if rate != 8000 or channels != 1:
            raise ProtocolError(f"mediaFormat {rate} Hz x{channels} is not Twilio's; expected 8000 Hz mono")
        params = start.get("customParameters") or {}
        if not isinstance(params, dict):
            raise ProtocolError("start.customParameters must be an object")
        params = {str(k): str(v) for k, v in params.items()}
        call_id = str(start.get("callSid") or msg.get("streamSid") or start.get("streamSid") or "")
        if not call_id:
            raise ProtocolError("'start' frame has no callSid")
        self.stream_sid = str(start.get("streamSid") or msg.get("streamSid") or "")
        self.started = True
        self.two_way = params.get("two_way", "true").lower() != "false"
        return CallStart(
            call_id=call_id,
            encoding=encoding,
            sample_rate=rate,
            channels=channels,
            speaker_ref=params.get("speaker_id", ""),
            ani=params.get("from", ""),
            params=params,
            two_way=self.two_way,
        )

    # -- outbound -------------------------------------------------------------------------------------------
    def serialize(self, event: OutEvent) -> list[Frame]:
        if not self.two_way or not self.stream_sid:
            return []
        if isinstance(event, DecisionOut):
            return [self._mark(DECISION_MARK_PREFIX + event.decision)]
        if isinstance(event, ChallengeOut):
            return [self._mark(CHALLENGE_MARK_PREFIX + event.digits)]
        if isinstance(event, PromptOut):
            samples = l16_decode(event.pcm16)
            if event.sample_rate != 8000:
                samples = resample(samples, event.sample_rate, 8000)
            ulaw = mulaw_encode(np.clip(samples, -1.0, 1.0))
            frames: list[Frame] = [
                json.dumps(
                    {
                        "event": "media",
                        "streamSid": self.stream_sid,
                        "media": {"payload": base64.b64encode(ulaw[i : i + _FRAME_BYTES]).decode()},
                    }
                )
                for i in range(0, len(ulaw), _FRAME_BYTES)
            ]
            frames.append(self._mark("prompt:" + event.name))
            return frames
        if isinstance(event, EnrollmentOut):
            return [self._mark("voiceauth:enrollment:" + ("enrolled" if event.enrolled else "incomplete"))]
        if isinstance(event, HangupOut):
            return []
        raise TypeError(f"cannot serialize {type(event).__name__}")

    def _mark(self, name: str) -> str:
        return json.dumps({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})
