"""Malformed input ends only that call, cleanly, with a logged reason and a recorded outcome; the server keeps serving.

FakeEngine (no speaker claims are proven here); one app for the whole module, so every case also shows that the
previous broken call left the server working.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from ivr.service import IvrService
from tests.ivr.conftest import TELEPHONY_KEY, TENANT, build_ivr, ivr_settings, make_app
from voiceauth.audio.codecs import mulaw_encode
from voiceauth.embedding.fake import FakeEngine


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, IvrService]]:
    home: Path = tmp_path_factory.mktemp("ivr-malformed")
    settings = ivr_settings(home, scoring_backend="cosine", ivr_idle_timeout_s=1.0, ivr_max_frame_bytes=4096)
    pipe, ivr = build_ivr(settings, FakeEngine())
    pipe.register(TENANT, "someone", consent_method="test", consent_text_version="v1", actor="test")
    with TestClient(make_app(ivr)) as c:
        yield c, ivr
    ivr.close()


def _start(call_sid: str) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": "MZ" + call_sid,
            "start": {
                "streamSid": "MZ" + call_sid,
                "callSid": call_sid,
                "accountSid": "AC1",
                "tracks": ["inbound"],
                "customParameters": {"speaker_id": "someone"},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
    )


def _media(payload: bytes) -> str:
    return json.dumps({"event": "media", "media": {"track": "inbound", "payload": base64.b64encode(payload).decode()}})


def _drain_until_closed(ws) -> int:  # type: ignore[no-untyped-def]
    """Read whatever the server sends until it closes; return the close code."""
    for _ in range(10_000):
        try:
            ws.receive_text()
        except WebSocketDisconnect as exc:
            return int(exc.code)
    raise AssertionError("the server never closed the socket")


def _healthy_call(c: TestClient, call_sid: str) -> dict:  # type: ignore[type-arg]
    """A short well-formed call still works and its outcome is readable."""
    with c.websocket_connect("/v1/streams/twilio") as ws:
        ws.send_text(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        ws.send_text(_start(call_sid))
        silence = mulaw_encode([0.0] * 160)
        for _ in range(10):
            ws.send_text(_media(silence))
        ws.send_text(json.dumps({"event": "stop", "stop": {"callSid": call_sid}}))
        _drain_until_closed(ws)
    r = c.get(f"/v1/calls/{call_sid}", headers={"X-API-KEY": TELEPHONY_KEY})
    assert r.status_code == 200
    return r.json()


CASES = {
    "bad-json": ["{not json"],
    "unknown-event": [json.dumps({"event": "teleport"})],
    "base64-garbage": [json.dumps({"event": "media", "media": {"track": "inbound", "payload": "!!!not-base64@@"}})],
    "oversized": [json.dumps({"event": "media", "media": {"payload": "A" * 10_000}})],
    "binary": [b"\x00\x01\x02"],
    "not-an-object": ["[1, 2, 3]"],
}
REASONS = {
    "bad-json": "protocol-error",
    "unknown-event": "protocol-error",
    "base64-garbage": "protocol-error",
    "oversized": "oversized-frame",
    "binary": "protocol-error",
    "not-an-object": "protocol-error",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_frame_ends_that_call_only(
    client: tuple[TestClient, IvrService], case: str, caplog: pytest.LogCaptureFixture
) -> None:
    c, ivr = client
    call_sid = f"CA-bad-{case}"
    with caplog.at_level(logging.INFO, logger="ivr"):
        with c.websocket_connect("/v1/streams/twilio") as ws:
            ws.send_text(_start(call_sid))
            ws.send_text(_media(mulaw_encode([0.0] * 160)))
            for frame in CASES[case]:
                if isinstance(frame, bytes):
                    ws.send_bytes(frame)
                else:
                    ws.send_text(frame)
            code = _drain_until_closed(ws)
    assert code == 1011
    outcome = ivr.registry.get(TENANT, call_sid)
    assert outcome is not None and outcome.end_reason.startswith(REASONS[case])
    assert any(REASONS[case] in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    assert _healthy_call(c, f"CA-after-{case}")["end_reason"] == "stop"


def test_client_that_never_sends_stop_is_timed_out(client: tuple[TestClient, IvrService]) -> None:
    c, ivr = client
    with c.websocket_connect("/v1/streams/twilio") as ws:
        ws.send_text(_start("CA-quiet"))
        ws.send_text(_media(mulaw_encode([0.0] * 160)))
        _drain_until_closed(ws)  # the server gives up after ivr_idle_timeout_s
    outcome = ivr.registry.get(TENANT, "CA-quiet")
    assert outcome is not None and outcome.end_reason == "idle-timeout"
    assert outcome.decision == "NOT_ENOUGH_SPEECH"
    assert _healthy_call(c, "CA-after-quiet")["decision"] == "NOT_ENOUGH_SPEECH"


def test_client_disconnecting_mid_call_is_recorded(client: tuple[TestClient, IvrService]) -> None:
    c, ivr = client
    with c.websocket_connect("/v1/streams/twilio") as ws:
        ws.send_text(_start("CA-gone"))
        # the greeting proves the server has opened the call; without waiting for it the test client's exit can
        # cancel the app before it has read the start message, and then there is no call to record
        assert json.loads(ws.receive_text())["event"] in {"media", "mark", "clear"}
        ws.send_text(_media(mulaw_encode([0.0] * 160)))
        ws.close()
    outcome = None
    for _ in range(500):  # the server notices the disconnect on its own schedule
        outcome = ivr.registry.get(TENANT, "CA-gone")
        if outcome is not None and outcome.end_reason:
            break
        time.sleep(0.02)
    assert outcome is not None and outcome.end_reason == "disconnected"
    assert _healthy_call(c, "CA-after-gone")["end_reason"] == "stop"


def test_media_before_start_is_a_protocol_error(client: tuple[TestClient, IvrService]) -> None:
    c, _ = client
    with c.websocket_connect("/v1/streams/twilio") as ws:
        ws.send_text(_media(b"\xff" * 160))
        assert _drain_until_closed(ws) == 1011
    assert _healthy_call(c, "CA-after-early-media")["end_reason"] == "stop"
