"""Whatever arrives on the socket, a serializer either translates it or raises ProtocolError (which ends only that
call): never another exception that would surface as an internal error."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.serializers.audiohook import AudioHookSerializer
from ivr.serializers.base import ProtocolError
from ivr.serializers.l16 import L16Serializer
from ivr.serializers.twilio import TwilioSerializer

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
events = st.sampled_from(["connected", "start", "media", "dtmf", "mark", "stop", "open", "ping", "close", "x"])


def _obj(*keys: str) -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries({}, optional={k: json_values for k in keys})


twilio_msgs = st.fixed_dictionaries(
    {"event": events},
    optional={
        "start": _obj("callSid", "streamSid", "mediaFormat", "customParameters") | json_values,
        "media": _obj("payload", "track") | json_values,
        "dtmf": _obj("digit") | json_values,
        "mark": _obj("name") | json_values,
    },
).map(json.dumps)
l16_msgs = _obj("content-type", "call_id", "uuid", "speaker_id", "event", "digit", "dtmf").map(json.dumps)
audiohook_msgs = st.fixed_dictionaries(
    {"version": st.sampled_from(["2", 2, "1"]), "type": events, "seq": st.integers(0, 3)},
    optional={
        "serverseq": json_values,
        "id": json_values,
        "parameters": _obj("media", "conversationId", "participant", "customConfig", "code", "message") | json_values,
    },
).map(json.dumps)
frames = st.one_of(
    st.binary(max_size=64), st.text(max_size=64), json_values.map(json.dumps), twilio_msgs, l16_msgs, audiohook_msgs
)


def _feed(serializer: object, seq: list[str | bytes]) -> None:
    for frame in seq:
        try:
            serializer.deserialize(frame)  # type: ignore[attr-defined]
        except ProtocolError:
            return


@settings(max_examples=300, deadline=None)
@given(st.lists(frames, max_size=6))
def test_twilio_never_raises_anything_but_protocol_error(seq: list[str | bytes]) -> None:
    _feed(TwilioSerializer(), seq)


@settings(max_examples=300, deadline=None)
@given(st.lists(frames, max_size=6))
def test_l16_never_raises_anything_but_protocol_error(seq: list[str | bytes]) -> None:
    _feed(L16Serializer(), seq)


@settings(max_examples=300, deadline=None)
@given(st.lists(frames, max_size=6))
def test_audiohook_never_raises_anything_but_protocol_error(seq: list[str | bytes]) -> None:
    _feed(AudioHookSerializer(), seq)
