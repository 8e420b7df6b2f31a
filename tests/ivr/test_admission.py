"""Admission control: beyond ``ivr_max_calls`` calls in progress a new stream is refused at once (and not recorded);
a slot frees when a call ends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.ivr.conftest import TELEPHONY_KEY, TENANT, build_ivr, ivr_settings, make_app
from voiceauth.embedding.fake import FakeEngine


def _meta(call_id: str) -> str:
    return json.dumps(
        {"content-type": "audio/l16;rate=8000", "call_id": call_id, "speaker_id": "x", "api_key": TELEPHONY_KEY}
    )


def _decision(ws) -> dict:  # type: ignore[no-untyped-def, type-arg]
    while True:
        frame = ws.receive()
        assert frame["type"] == "websocket.send", frame  # not closed before the decision
        if frame.get("text") and json.loads(frame["text"]).get("event") == "decision":
            return json.loads(frame["text"])  # type: ignore[no-any-return]


def test_calls_beyond_the_limit_are_refused_until_one_ends(tmp_path: Path) -> None:
    pipe, ivr = build_ivr(ivr_settings(tmp_path, ivr_max_calls=1), FakeEngine())
    pipe.register(TENANT, "x", consent_method="test", consent_text_version="v1", actor="test")
    with TestClient(make_app(ivr)) as client:
        with client.websocket_connect("/v1/streams/l16") as first:
            first.send_text(_meta("c-first"))
            first.send_bytes(b"\x00\x00" * 160)
            with client.websocket_connect("/v1/streams/l16") as second:
                second.send_text(_meta("c-second"))
                with pytest.raises(WebSocketDisconnect):
                    while True:
                        second.receive_text()  # refused: closed before any prompt or decision
            assert ivr.active_calls == 1
            first.send_text(json.dumps({"event": "stop"}))
            assert _decision(first)["decision"] == "NOT_ENOUGH_SPEECH"
        with client.websocket_connect("/v1/streams/l16") as third:  # the slot is free again
            third.send_text(_meta("c-third"))
            third.send_text(json.dumps({"event": "stop"}))
            assert _decision(third)["decision"] == "NOT_ENOUGH_SPEECH"
    assert ivr.active_calls == 0
    assert ivr.registry.get(TENANT, "c-second") is None and ivr.registry.get(TENANT, "c-third") is not None
    ivr.close()
