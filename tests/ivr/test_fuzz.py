"""Whatever arrives on the socket, a serializer either translates it or raises ProtocolError (which ends only that
call): never another exception that would surface as an internal error.

A seeded random fuzzer rather than hypothesis: hypothesis scans ``sys.modules`` for constants, and SpeechBrain's
lazy modules (loaded by other tests in this package) warn when touched, which the suite treats as an error.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from ivr.serializers.audiohook import AudioHookSerializer
from ivr.serializers.base import ProtocolError
from ivr.serializers.l16 import L16Serializer
from ivr.serializers.twilio import TwilioSerializer

EVENTS = ["connected", "start", "media", "dtmf", "mark", "stop", "open", "ping", "close", "paused", "x", ""]
KEYS = [
    "event", "type", "start", "media", "dtmf", "mark", "seq", "serverseq", "version", "parameters", "callSid",
    "streamSid", "mediaFormat", "customParameters", "payload", "track", "digit", "content-type", "call_id",
    "conversationId", "participant", "customConfig", "channels", "format", "rate", "encoding", "sampleRate",
]  # fmt: skip


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, 1, 2, -1, 8000, 16000, 44100, 2**40])
    if kind == 3:
        return rng.choice([0.5, -3.25, 1e300])
    if kind == 4:
        return rng.choice(EVENTS + ["2", "audio/x-mulaw", "audio/l16;rate=16000", "PCMU", "external", "AAAA", "!!"])
    if kind == 5:
        return "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(8)))
    if kind == 6:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(KEYS): _value(rng, depth + 1) for _ in range(rng.randrange(6))}


def _message(rng: random.Random) -> dict[str, Any]:
    msg = {k: _value(rng, 1) for k in rng.sample(KEYS, rng.randrange(1, 6))}
    if rng.random() < 0.7:
        msg["event"] = msg["type"] = rng.choice(EVENTS)
    if rng.random() < 0.5:
        msg["version"], msg["seq"] = "2", rng.randrange(0, 4)
    return msg


def _frame(rng: random.Random) -> str | bytes:
    r = rng.random()
    if r < 0.15:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
    if r < 0.25:
        return "".join(chr(rng.randrange(32, 127)) for _ in range(rng.randrange(64)))
    if r < 0.35:
        return json.dumps(_value(rng))
    return json.dumps(_message(rng))


OPENERS = {
    "TwilioSerializer": {"event": "start", "start": {"callSid": "CA1", "streamSid": "MZ1"}},
    "L16Serializer": {"content-type": "audio/l16;rate=8000"},
    "AudioHookSerializer": {
        "version": "2",
        "type": "open",
        "seq": 1,
        "parameters": {"media": [{"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000}]},
    },
}


@pytest.mark.parametrize("make", [TwilioSerializer, L16Serializer, AudioHookSerializer], ids=lambda m: m.__name__)
def test_any_frames_give_events_or_protocol_errors(make: Any) -> None:
    rng = random.Random(20261123)
    translated = 0
    for _ in range(3000):
        serializer = make()
        if rng.random() < 0.5:  # half the calls open properly, so the fuzzer reaches the later states
            serializer.deserialize(json.dumps(OPENERS[make.__name__]))
        for _ in range(rng.randrange(1, 6)):
            try:
                serializer.deserialize(_frame(rng))
                translated += 1
            except ProtocolError:
                break
    assert translated > 0  # the fuzzer reaches past the first frame
