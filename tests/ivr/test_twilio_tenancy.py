"""Twilio tenancy and authentication inside the real API app (``create_app``, real store, FakeEngine: wiring).

Every Twilio stream and TwiML request names its tenant (``/v1/streams/twilio/{tenant}``, ``/v1/twiml/{tenant}``)
and is signed with that tenant's own Twilio auth token, stored encrypted on its API key. Refusals happen at the
handshake, are audited with their reason and never become a call. Outside the embedded demo a tenant without a
token is refused; the demo (``voiceauth serve`` on SQLite) opens its demo tenant and says so once at start.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from ivr.twilio_auth import TwilioGate, twilio_signature
from tests.api.conftest import Api, bearer, make_api
from voiceauth.audio.codecs import mulaw_encode
from voiceauth.cli import app as cli_app
from voiceauth.config import Settings
from voiceauth.embedding.fake import FakeEngine
from voiceauth.errors import ConfigError
from voiceauth.store.keys import create_api_key
from voiceauth.store.models import AuditEvent
from voiceauth.store.testing import postgres_scratch_schema

ACME_TOKEN = "0123456789abcdef0123456789abcdef"
OTHER_TOKEN = "fedcba9876543210fedcba9876543210"


def _with_tokens(api: Api) -> Api:
    """acme and other each get a telephony key holding their own Twilio auth token."""
    with api.store.transaction() as tx:
        for tenant, token in (("acme", ACME_TOKEN), ("other", OTHER_TOKEN)):
            create_api_key(tx, tx.tenant(tenant).id, "telephony", label="twilio", actor="test", twilio_auth_token=token)
    return api


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    gen = make_api(f"sqlite+pysqlite:///{tmp_path / 'api.db'}", tmp_path, ivr_prompt_dir=tmp_path / "prompts")
    yield _with_tokens(next(gen))
    for _ in gen:
        pass


@pytest.fixture
def pg_api(pg_database: str, tmp_path: Path) -> Iterator[Api]:
    """Production shape: PostgreSQL, no Twilio token for any tenant."""
    with postgres_scratch_schema(pg_database, prefix="twilio") as url:
        gen = make_api(url, tmp_path, database_url=url, ivr_prompt_dir=tmp_path / "prompts")
        yield next(gen)
        for _ in gen:
            pass


def _start(call_sid: str, speaker: str = "cust-9") -> str:
    fmt = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    start = {"streamSid": "MZ" + call_sid, "callSid": call_sid, "customParameters": {"speaker_id": speaker}}
    return json.dumps({"event": "start", "start": {**start, "mediaFormat": fmt}})


def _short_call(client: TestClient, path: str, call_sid: str, headers: dict[str, str] | None = None) -> None:
    """A short silent call on an accepted stream, to its end."""
    with client.websocket_connect(path, headers=headers or {}) as ws:
        ws.send_text(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        ws.send_text(_start(call_sid))
        payload = base64.b64encode(mulaw_encode([0.0] * 160)).decode()
        for _ in range(5):
            ws.send_text(json.dumps({"event": "media", "media": {"payload": payload}}))
        ws.send_text(json.dumps({"event": "stop"}))
        with pytest.raises(WebSocketDisconnect):
            while True:
                ws.receive_text()


def _refused(client: TestClient, path: str, headers: dict[str, str] | None = None) -> int:
    """The close code of a stream the server refuses at the handshake (before it accepts)."""
    with pytest.raises(WebSocketDisconnect) as exc:
        with client.websocket_connect(path, headers=headers or {}) as ws:
            ws.receive_text()
    return exc.value.code


def _signed(token: str, path: str) -> dict[str, str]:
    return {"X-Twilio-Signature": twilio_signature(token, "ws://testserver" + path)}


def _refusals(api: Api) -> list[dict[str, Any]]:
    with api.store.transaction() as tx:
        rows = tx.session.execute(select(AuditEvent).where(AuditEvent.action == "twilio.refused")).scalars()
        return [{"tenant_id": r.tenant_id, "outcome": r.outcome, **json.loads(r.details)} for r in rows]


def _calls(api: Api, who: str, speaker: str = "cust-9") -> list[str]:
    r = api.client.get("/v1/calls", params={"speaker_id": speaker}, headers=bearer(api.keys[who]))
    assert r.status_code == 200, r.text
    return [c["call_id"] for c in r.json()["calls"]]


def test_the_tenants_own_token_admits_its_stream_and_its_calls_stay_in_it(api: Api) -> None:
    path = "/v1/streams/twilio/acme"
    _short_call(api.client, path, "CA-acme-1", _signed(ACME_TOKEN, path))
    assert _calls(api, "acme:telephony") == ["CA-acme-1"]
    assert _calls(api, "other:telephony") == []  # another tenant's keys see nothing of it
    r = api.client.get("/v1/calls/CA-acme-1", headers=api.h("other:security"))
    assert r.status_code == 404
    assert _refusals(api) == []


def test_wrong_tenants_token_missing_signature_and_unknown_tenant_are_refused_and_audited(api: Api) -> None:
    path = "/v1/streams/twilio/acme"
    assert _refused(api.client, path, _signed(OTHER_TOKEN, path)) == 1008  # other's token for acme's stream
    assert _refused(api.client, path) == 1008  # no signature at all
    assert _refused(api.client, path, _signed(ACME_TOKEN, "/v1/streams/twilio/other")) == 1008  # signed another URL
    assert _refused(api.client, "/v1/streams/twilio/nobody", _signed(ACME_TOKEN, "/v1/streams/twilio/nobody")) == 1008
    refusals = _refusals(api)
    assert [r["outcome"] for r in refusals] == ["refused"] * 4
    reasons = [r["reason"] for r in refusals]
    assert "does not match" in reasons[0] and "missing" in reasons[1] and "does not match" in reasons[2]
    assert reasons[3] == "no tenant 'nobody'" and refusals[3]["tenant_id"] is None
    with api.store.transaction() as tx:
        assert refusals[0]["tenant_id"] == tx.tenant("acme").id
    assert _calls(api, "acme:telephony") == [] and _calls(api, "other:telephony") == []  # never a call
    assert api.store.verify_audit_chain().ok


def test_twiml_per_tenant_is_signed_over_url_and_form_and_answers_the_tenants_stream(api: Api) -> None:
    form = {"From": "+15550100", "CallSid": "CA1"}
    url = "http://testserver/v1/twiml/acme?speaker_id=cust-9"
    assert api.client.post("/v1/twiml/acme?speaker_id=cust-9", data=form).status_code == 403
    wrong = {"X-Twilio-Signature": twilio_signature(OTHER_TOKEN, url, form)}
    r = api.client.post("/v1/twiml/acme?speaker_id=cust-9", data=form, headers=wrong)
    assert r.status_code == 403 and "does not match" in r.json()["detail"]
    good = {"X-Twilio-Signature": twilio_signature(ACME_TOKEN, url, form)}
    r = api.client.post("/v1/twiml/acme?speaker_id=cust-9", data=form, headers=good)
    assert r.status_code == 200 and '<Stream url="ws://testserver/v1/streams/twilio/acme">' in r.text
    assert '<Parameter name="speaker_id" value="cust-9"/>' in r.text and 'value="+15550100"' in r.text
    # the unscoped webhook has no tenant here (VOICEAUTH_IVR_TENANT unset): refused
    assert api.client.post("/v1/twiml", data=form, headers=good).status_code == 403
    assert len(_refusals(api)) == 3


def test_a_revoked_key_takes_its_twilio_token_with_it(api: Api) -> None:
    path = "/v1/streams/twilio/other"
    listed = api.client.get("/v1/keys", headers=api.h("other:admin")).json()
    holder = next(k for k in listed if k["twilio"])
    assert api.client.delete(f"/v1/keys/{holder['id']}", headers=api.h("other:admin")).status_code == 204
    assert _refused(api.client, path, _signed(OTHER_TOKEN, path)) == 1008
    assert "no Twilio auth token configured" in _refusals(api)[-1]["reason"]
    # an admin sets a new token through the API; the key response never shows it
    body = {"role": "telephony", "label": "twilio 2", "twilio_auth_token": "a" * 32}
    r = api.client.post("/v1/keys", json=body, headers=api.h("other:admin"))
    assert r.status_code == 201 and r.json()["twilio"] is True and "a" * 32 not in r.text
    _short_call(api.client, path, "CA-other-1", _signed("a" * 32, path))
    assert _calls(api, "other:telephony") == ["CA-other-1"]


def test_production_start_without_twilio_token_refuses_the_tenants_streams(pg_api: Api) -> None:
    path = "/v1/streams/twilio/acme"
    assert _refused(pg_api.client, path) == 1008
    assert _refused(pg_api.client, path, _signed(ACME_TOKEN, path)) == 1008
    form = {"From": "+15550100"}
    assert pg_api.client.post("/v1/twiml/acme", data=form).status_code == 403
    reasons = [r["reason"] for r in _refusals(pg_api)]
    assert len(reasons) == 3 and all("has no Twilio auth token configured" in r for r in reasons)
    assert _calls(pg_api, "acme:telephony") == []
    # unsigned tenants are the embedded demo's alone: with a database URL the setting is refused
    with pytest.raises(ConfigError, match="only the embedded demo"):
        TwilioGate(pg_api.settings.model_copy(update={"twilio_open_tenants": ["acme"]}), tokens=None)  # type: ignore[arg-type]


def test_embedded_demo_accepts_its_tenant_unsigned_and_warns_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``voiceauth serve`` on embedded defaults (served app captured instead of listening)."""
    served: list[FastAPI] = []
    monkeypatch.setattr("voiceauth.api.server.serve_app", lambda app, **kw: served.append(app))
    for name in [k for k in os.environ if k.startswith("VOICEAUTH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("VOICEAUTH_HOME", str(Settings().home))  # the fetched models, the shipped scoring
    monkeypatch.setenv("VOICEAUTH_OFFLINE", "true")
    monkeypatch.setenv("VOICEAUTH_IVR_PROMPT_DIR", str(tmp_path / "prompts"))
    from voiceauth.config import get_settings

    get_settings.cache_clear()
    try:
        runner = CliRunner()
        data = tmp_path / "data"
        made = runner.invoke(
            cli_app, ["keys", "create", "--tenant", "shop", "--role", "telephony", "--data-dir", str(data)]
        )
        assert made.exit_code == 0, made.output
        with caplog.at_level(logging.WARNING):
            result = runner.invoke(cli_app, ["serve", "--data-dir", str(data)])
        assert result.exit_code == 0, result.output
    finally:
        get_settings.cache_clear()
    warnings = [r for r in caplog.records if "WITHOUT X-Twilio-Signature" in r.getMessage()]
    assert len(warnings) == 1 and "'demo'" in warnings[0].getMessage()
    assert result.output.count("WITHOUT X-Twilio-Signature") == 1  # the start's output, once
    app = served[0]
    app.state.services.attach_engine(FakeEngine())  # the model is not needed for the wiring
    client = TestClient(app)
    _short_call(client, "/v1/streams/twilio/demo", "CA-demo-1")  # unsigned: the demo's tenant is open
    _short_call(client, "/v1/streams/twilio", "CA-demo-2")  # the alias is the demo tenant
    assert _refused(client, "/v1/streams/twilio/shop") == 1008  # another tenant without a token: refused
    keys = dict(re.findall(r"^\s+(\w+) key:\s+(va_\S+)$", result.output, flags=re.M))
    r = client.get("/v1/calls", params={"speaker_id": "cust-9"}, headers=bearer(keys["telephony"]))
    assert [c["call_id"] for c in r.json()["calls"]] == ["CA-demo-2", "CA-demo-1"]
    app.state.ivr.close()
    app.state.services.close()
