"""Per-tenant Twilio with the real Twilio simulator ``streamdouble`` and the real engine.

A stream to ``/v1/streams/twilio/acme`` signed with acme's own Twilio auth token (stored encrypted on its API key)
ACCEPTs george, the enrolled caller, and REJECTs an impostor; the outcomes are visible under acme's ``GET /v1/calls``
only: another tenant's keys see nothing of them. The same audio signed with the other tenant's token, or unsigned,
never becomes a call. No tenant here is open (the production rule): every stream must be signed.

streamdouble does not sign its handshake (real Twilio does): the test adds ``X-Twilio-Signature`` to its connect as
Twilio computes it, and changes nothing else of the simulator.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
import websockets

from ivr.service import IvrService, KeyInfo
from ivr.twilio_auth import twilio_signature
from tests.ivr.conftest import TENANT, LiveServer, fsdd_digits, ivr_settings, make_app, serve
from voiceauth.pipeline import Pipeline
from voiceauth.store.keys import authenticate, create_api_key
from voiceauth.store.repo import Store

streamdouble_api = pytest.importorskip("streamdouble.api", reason="streamdouble (dev extra) is not installed")
from streamdouble.session import SessionConfig  # noqa: E402

pytestmark = pytest.mark.model

ACME_TOKEN = "9f1c2a7be04d4c3f8a6b5e1d2c3b4a59"
RIVAL_TOKEN = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"


class StoreKeys:
    """The store's API keys (``voiceauth keys create``) as the IVR's key resolver."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def resolve(self, api_key: str) -> KeyInfo | None:
        with self.store.transaction() as tx:
            p = authenticate(tx, api_key)
        return None if p is None else KeyInfo(p.tenant, p.role.value)


@pytest.fixture(scope="module")
def tenants_server(
    real_ivr: tuple[Pipeline, IvrService], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """george's store (tenant acme) plus tenant rival, each with a telephony key holding its own Twilio token."""
    pipe, shared = real_ivr
    store = pipe.verifier.store
    keys: dict[str, str] = {}
    with store.transaction() as tx:
        for tenant, token in ((TENANT, ACME_TOKEN), ("rival", RIVAL_TOKEN)):
            t = tx.get_or_create_tenant(tenant, actor="test")
            keys[tenant] = create_api_key(tx, t.id, "telephony", actor="test", twilio_auth_token=token)[1]
            keys[f"{tenant}:security"] = create_api_key(tx, t.id, "security", actor="test")[1]
    home = tmp_path_factory.mktemp("ivr-tenants")
    settings = ivr_settings(home, ivr_prompt_dir=shared.settings.ivr_prompt_dir, twilio_open_tenants=[])
    ivr = IvrService(settings, engine=pipe.engine, verifier=pipe.verifier, keys=StoreKeys(store))
    try:
        for hostport in serve(make_app(ivr)):
            yield LiveServer(f"http://{hostport}", f"ws://{hostport}", ivr, pipe), keys
    finally:
        ivr.close()


def _wav(path: Path, samples: np.ndarray) -> Path:
    sf.write(path, samples, 8000, subtype="PCM_16")
    return path


def _call(url: str, audio: Path, speaker: str, token: str | None, monkeypatch: pytest.MonkeyPatch) -> Any:
    """One streamdouble call; its handshake signed with ``token`` (None: unsigned)."""
    connect = websockets.connect
    if token is not None:
        headers = {"X-Twilio-Signature": twilio_signature(token, url)}
        monkeypatch.setattr(websockets, "connect", functools.partial(connect, additional_headers=headers))
    config = SessionConfig(
        custom_parameters={"speaker_id": speaker}, response_timeout_s=30.0, quiet_period_s=0.5, max_drain_s=20.0
    )
    try:
        return asyncio.run(streamdouble_api.call(url, audio_path=audio, config=config))
    finally:
        monkeypatch.setattr(websockets, "connect", connect)


def _calls(server: LiveServer, key: str, speaker: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{server.url}/v1/calls", params={"speaker_id": speaker}, headers={"X-API-KEY": key}, timeout=10)
    assert r.status_code == 200, r.text
    calls: list[dict[str, Any]] = r.json()["calls"]
    return calls


def test_signed_tenant_stream_accepts_genuine_rejects_impostor_and_stays_in_the_tenant(
    tenants_server: tuple[LiveServer, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, keys = tenants_server
    url = f"{server.ws}/v1/streams/twilio/{TENANT}"
    digits = "1414213562"
    genuine = _call(url, _wav(tmp_path / "g.wav", fsdd_digits("george", digits, 47)), "george", ACME_TOKEN, monkeypatch)
    impostor = _call(
        url, _wav(tmp_path / "j.wav", fsdd_digits("jackson", digits, 47)), "george", ACME_TOKEN, monkeypatch
    )
    for report in (genuine, impostor):
        assert report.violations == [], report.violations
    sids = {genuine.result.identity.call_sid: "ACCEPT", impostor.result.identity.call_sid: "REJECT"}
    seen = {c["call_id"]: c["decision"] for c in _calls(server, keys[TENANT], "george")}
    assert {sid: seen.get(sid) for sid in sids} == sids
    assert "voiceauth:decision:ACCEPT" in genuine.result.marks_received
    assert "voiceauth:decision:REJECT" in impostor.result.marks_received
    # another tenant's keys see nothing of these calls
    assert _calls(server, keys["rival"], "george") == []
    for sid in sids:
        for who in ("rival", "rival:security"):
            r = httpx.get(f"{server.url}/v1/calls/{sid}", headers={"X-API-KEY": keys[who]}, timeout=10)
            assert r.status_code == 404


def test_wrong_tenants_token_or_no_signature_never_becomes_a_call(
    tenants_server: tuple[LiveServer, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, keys = tenants_server
    url = f"{server.ws}/v1/streams/twilio/{TENANT}"
    audio = _wav(tmp_path / "g.wav", fsdd_digits("george", "1414213562", 48))
    before = {c["call_id"] for c in _calls(server, keys[TENANT], "george")}
    for token in (RIVAL_TOKEN, None):
        with pytest.raises(websockets.InvalidStatus) as exc:
            _call(url, audio, "george", token, monkeypatch)
        assert exc.value.response.status_code == 403  # refused at the handshake
    assert {c["call_id"] for c in _calls(server, keys[TENANT], "george")} == before
