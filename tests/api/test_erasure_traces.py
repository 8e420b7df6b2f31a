"""Erasure and opt-out leave no call record or replay fingerprint of the reference behind, registered or not.

A call may claim any reference, so its ``calls`` row keeps the reference as given even when nobody is registered
under it (or not yet). Erasing or opting out a reference deletes those rows and the speaker's replay fingerprints;
for a reference that was never registered the API still answers 404, and the rows naming it are gone all the same.
SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from tests.api.conftest import Api
from voiceauth.store.calls import StoredCall, save_call
from voiceauth.store.models import AuditEvent, CallRecord, ReplayFingerprint


def _call(api: Api, call_id: str, ref: str, tenant: str = "acme") -> None:
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    with api.store.transaction() as tx:
        call = StoredCall(call_id, "twilio", ref, "REJECT", 4.0, 3000, "voice", "failed", "stop", now, now)
        save_call(tx, tx.tenant(tenant).id, call)


def _count(api: Api, model: type, **where: object) -> int:
    with api.store.transaction() as tx:
        q = select(func.count()).select_from(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return int(tx.session.execute(q).scalar_one())


def _fingerprint(api: Api, ref: str) -> None:
    with api.store.transaction() as tx:
        tx.add_replay_fingerprint(tx.require_speaker(tx.tenant("acme").id, ref), b"\x01" * 64)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_api(request: pytest.FixtureRequest, api_factory: Callable[..., Api]) -> Api:
    if request.param == "sqlite":
        return api_factory()
    return api_factory(request.getfixturevalue("pg_url"))


def test_erasure_of_a_never_registered_reference_removes_its_call_records(any_api: Api) -> None:
    api = any_api
    _call(api, "CA-ghost-1", "ghost")
    _call(api, "CA-ghost-2", "ghost")
    _call(api, "CA-ghost-other", "ghost", tenant="other")  # another tenant's reference of the same name stays
    r = api.client.delete("/v1/speakers/ghost", headers=api.h("acme:telephony"))
    assert r.status_code == 404 and "were erased" in r.json()["detail"]
    assert _count(api, CallRecord, speaker_ref="ghost") == 1  # only the other tenant's
    assert api.client.get("/v1/calls/CA-ghost-1", headers=api.h("acme:security")).status_code == 404
    with api.store.transaction() as tx:
        ev = tx.session.execute(select(AuditEvent).where(AuditEvent.action == "reference.erase")).scalar_one()
        assert json.loads(ev.details) == {"calls": 2} and ev.subject.startswith("p:") and "ghost" not in ev.details
    _call(api, "CA-ghost-3", "ghost")
    r = api.client.post("/v1/speakers/ghost/opt-out", headers=api.h("acme:telephony"))
    assert r.status_code == 404 and _count(api, CallRecord, call_id="CA-ghost-3") == 0


def test_erasure_removes_calls_from_before_registration_and_replay_fingerprints(any_api: Api) -> None:
    api = any_api
    _call(api, "CA-early", "cust-1")  # claimed before cust-1 was registered: no speaker id on the row
    assert api.register("cust-1").status_code == 201
    _call(api, "CA-late", "cust-1")
    _fingerprint(api, "cust-1")
    assert _count(api, CallRecord, speaker_ref="cust-1") == 2 and _count(api, ReplayFingerprint) == 1
    assert api.client.delete("/v1/speakers/cust-1", headers=api.h("acme:telephony")).status_code == 204
    assert _count(api, CallRecord, speaker_ref="cust-1") == 0 and _count(api, ReplayFingerprint) == 0


def test_opt_out_removes_call_records_and_replay_fingerprints(any_api: Api) -> None:
    api = any_api
    _call(api, "CA-before", "cust-2")
    assert api.register("cust-2").status_code == 201
    _call(api, "CA-after", "cust-2")
    _fingerprint(api, "cust-2")
    r = api.client.post("/v1/speakers/cust-2/opt-out", headers=api.h("acme:telephony"))
    assert r.status_code == 200 and r.json()["status"] == "opted_out"
    assert _count(api, CallRecord, speaker_ref="cust-2") == 0 and _count(api, ReplayFingerprint) == 0
    listed = api.client.get("/v1/calls", params={"speaker_id": "cust-2"}, headers=api.h("acme:security"))
    assert listed.status_code == 200 and listed.json()["calls"] == []
