"""Invalid API keys are throttled per client address: after ``api_auth_failure_burst`` of them an address gets 429
(with Retry-After) and its keys are not even looked up, while other addresses and valid keys elsewhere go on.
Refused telephony handshakes (an address probing stream credentials) have a budget of their own per address, in the
IVR: beyond it they are refused unseen and logged, not audited."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.websockets import WebSocketDisconnect

from tests.api.conftest import Api, bearer
from voiceauth.store.models import AuditEvent


def test_invalid_keys_are_throttled_per_client_address(api_factory: Callable[..., Api]) -> None:
    api = api_factory(api_auth_failure_burst=5, api_auth_failures_per_minute=1.0)
    bad = bearer("va_00000000_" + "x" * 43)
    codes = [api.client.get("/v1/tenant", headers=bad).status_code for _ in range(7)]
    assert codes == [401] * 5 + [429] * 2
    r = api.client.get("/v1/tenant", headers=bad)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and "invalid API key" in r.json()["detail"]
    # the address is over its budget: even a valid key from it waits (it is not looked up)
    assert api.client.get("/v1/tenant", headers=api.h("acme:telephony")).status_code == 429
    # another address is not affected, with a valid key or an invalid one
    other = TestClient(api.client.app, client=("10.0.0.2", 40000))
    assert other.get("/v1/tenant", headers=api.h("acme:telephony")).status_code == 200
    assert other.get("/v1/tenant", headers=bad).status_code == 401
    # valid keys never spend the budget
    fresh = TestClient(api.client.app, client=("10.0.0.3", 40000))
    assert all(fresh.get("/v1/tenant", headers=api.h("acme:telephony")).status_code == 200 for _ in range(8))


def test_refused_stream_handshakes_are_audited_within_the_address_budget(api_factory: Callable[..., Api]) -> None:
    api = api_factory(api_auth_failure_burst=3, api_auth_failures_per_minute=1.0)
    for _ in range(5):
        with pytest.raises(WebSocketDisconnect):
            with api.client.websocket_connect("/v1/streams/audiohook", headers={"X-API-KEY": "nope"}) as ws:
                ws.receive_text()
    with api.store.transaction() as tx:
        audited = tx.session.execute(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "audiohook.refused")
        ).scalar_one()
    assert audited == 3  # beyond the budget the refusals are logged, not audited
