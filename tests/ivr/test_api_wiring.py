"""The IVR routes inside the real API app (``create_app``): its API keys, tenants and problem+json; TwiML webhook;
Twilio signature validation. FakeEngine: this proves wiring, not speaker decisions."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from ivr.routes import twilio_signature
from voiceauth.api.main import create_app
from voiceauth.audio.codecs import mulaw_encode
from voiceauth.config import Settings
from voiceauth.embedding.fake import FakeEngine
from voiceauth.scoring.base import CosineScorer
from voiceauth.store.keys import create_api_key
from voiceauth.store.repo import open_store
from voiceauth.watchlist import COSINE_OPERATING_POINTS

TOKEN = "twilio-auth-token-for-tests"


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = Settings(
        home=tmp_path,
        scoring_backend="cosine",
        ivr_tenant="acme",
        twilio_auth_token=TOKEN,
        ivr_public_url="https://ivr.example.com",
        ivr_prompt_dir=tmp_path / "prompts",
    )
    store = open_store(settings)
    keys: dict[str, str] = {}
    with store.transaction() as tx:
        t = tx.get_or_create_tenant("acme", actor="test")
        for role in ("telephony", "security"):
            keys[role] = create_api_key(tx, t.id, role, actor="test")[1]
    app = create_app(
        settings, engine=FakeEngine(), store=store, scorer=CosineScorer(), operating_points=COSINE_OPERATING_POINTS
    )
    with TestClient(app) as client:
        yield client, keys
    store.dispose()


def _start(call_sid: str) -> str:
    return json.dumps(
        {
            "event": "start",
            "start": {
                "streamSid": "MZ1",
                "callSid": call_sid,
                "customParameters": {"speaker_id": "cust-9"},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
    )


def test_signed_twilio_stream_and_outcome_via_api_keys(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    url = "wss://ivr.example.com/v1/streams/twilio"
    headers = {"X-Twilio-Signature": twilio_signature(TOKEN, url)}
    with client.websocket_connect("/v1/streams/twilio", headers=headers) as ws:
        ws.send_text(_start("CA-api-1"))
        payload = mulaw_encode([0.0] * 160)
        for _ in range(5):
            ws.send_text(json.dumps({"event": "media", "media": {"payload": base64.b64encode(payload).decode()}}))
        ws.send_text(json.dumps({"event": "stop"}))
        with pytest.raises(WebSocketDisconnect):
            while True:
                ws.receive_text()
    bearer = {"Authorization": f"Bearer {keys['telephony']}"}
    r = client.get("/v1/calls/CA-api-1", headers=bearer)
    assert r.status_code == 200 and r.json()["decision"] == "NOT_ENOUGH_SPEECH"
    assert "score" not in r.json()
    staff = client.get("/v1/calls/CA-api-1", headers={"Authorization": f"Bearer {keys['security']}"}).json()
    assert "internal_decision" in staff and staff["internal_decision"] == "NOT_ENROLLED"
    listed = client.get("/v1/calls", params={"speaker_id": "cust-9"}, headers=bearer).json()["calls"]
    assert [c["call_id"] for c in listed] == ["CA-api-1"]
    missing = client.get("/v1/calls/CA-nope", headers=bearer)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")


def test_unsigned_twilio_stream_is_refused(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = api
    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect("/v1/streams/twilio", headers={"X-Twilio-Signature": "bm9wZQ=="}) as ws:
            ws.receive_text()


def test_twiml_connects_a_stream_with_the_claim(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = api
    form = {"From": "+15550100", "CallSid": "CA1"}
    assert client.post("/v1/twiml?speaker_id=cust-9", data=form).status_code == 403
    sig = twilio_signature(TOKEN, "https://ivr.example.com/v1/twiml?speaker_id=cust-9", form)
    r = client.post("/v1/twiml?speaker_id=cust-9", data=form, headers={"X-Twilio-Signature": sig})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert '<Stream url="wss://ivr.example.com/v1/streams/twilio">' in r.text
    assert '<Parameter name="speaker_id" value="cust-9"/>' in r.text and 'value="+15550100"' in r.text
