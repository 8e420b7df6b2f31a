"""Call outcomes in the store (any worker process answers GET /v1/calls) and calling-number (ANI) identification.

Store-level tests run on SQLite and PostgreSQL; the end-to-end test identifies an AudioHook caller by
``participant.ani`` alone (no ``customConfig.speaker_id``) with the real engine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ivr.calls import CallOutcome
from ivr.routes import get_ivr
from tests.ivr.conftest import TELEPHONY_KEY, TENANT, LiveServer, fsdd_digits
from tests.ivr.test_audiohook import MONO, Client, _authority, _connect, signed_headers
from voiceauth.api.main import create_app
from voiceauth.config import Settings
from voiceauth.embedding.fake import FakeEngine
from voiceauth.errors import AlreadyExists, NotFound, StoreError
from voiceauth.scoring.base import CosineScorer
from voiceauth.store.ani import (
    add_caller_number,
    caller_numbers,
    lookup_caller,
    normalize_number,
    reencrypt_caller_numbers,
    remove_caller_number,
)
from voiceauth.store.calls import StoredCall, calls_for_speaker, get_call, save_call
from voiceauth.store.crypto import Keyring
from voiceauth.store.db import create_db_engine
from voiceauth.store.keys import create_api_key
from voiceauth.store.models import CallerNumber, CallRecord
from voiceauth.store.repo import Store, open_store
from voiceauth.store.testing import FakeClock, test_keyring
from voiceauth.watchlist import COSINE_OPERATING_POINTS


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(create_db_engine(db_url), test_keyring(), clock=FakeClock())
    yield s
    s.dispose()


def _call(call_id: str, ref: str, started: dt.datetime, decision: str | None = None) -> StoredCall:
    return StoredCall(
        call_id=call_id,
        protocol="twilio",
        speaker_ref=ref,
        decision=decision,
        speech_seconds=3.1 if decision else 0.0,
        decided_at_ms=3400 if decision else None,
        method="voice" if decision else "",
        flow_outcome="",
        reason="",
        started_at=started,
        ended_at=None,
        details={"score": 71.5} if decision else {},
    )


def test_calls_are_upserted_listed_newest_first_and_erased_with_the_speaker(store: Store) -> None:
    t0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    with store.transaction() as tx:
        tid = tx.get_or_create_tenant(TENANT).id
        tx.create_speaker(tid, "cust-1", actor="test")
        save_call(tx, tid, _call("CA1", "cust-1", t0))
        save_call(tx, tid, _call("CA1", "cust-1", t0, decision="ACCEPT"))  # same call, decided: one row updated
        save_call(tx, tid, _call("CA2", "cust-1", t0 + dt.timedelta(minutes=5), decision="REJECT"))
        save_call(tx, tid, _call("CA3", "unknown-9", t0, decision="REJECT"))
    with store.transaction() as tx:
        one = get_call(tx, tid, "CA1")
        assert one is not None and one.decision == "ACCEPT" and one.decided_at_ms == 3400
        assert one.details == {"score": 71.5} and one.started_at == t0
        assert [c.call_id for c in calls_for_speaker(tx, tid, "cust-1")] == ["CA2", "CA1"]
        assert get_call(tx, tid + 1, "CA1") is None  # tenant-scoped
        with pytest.raises(StoreError, match="call id"):
            save_call(tx, tid, _call("", "cust-1", t0))
    assert store.count_rows(CallRecord) == 3
    with store.transaction() as tx:
        tx.erase(tx.require_speaker(tid, "cust-1"), actor="test")
    with store.transaction() as tx:  # the registered speaker's calls went with it; the unknown claim stays
        assert calls_for_speaker(tx, tid, "cust-1") == [] and get_call(tx, tid, "CA3") is not None


def test_calling_numbers_are_stored_hashed_and_encrypted_and_found_in_any_spelling(store: Store) -> None:
    with store.transaction() as tx:
        tid = tx.get_or_create_tenant(TENANT).id
        alice = tx.create_speaker(tid, "alice", actor="test")
        bob = tx.create_speaker(tid, "bob", actor="test")
        view = add_caller_number(tx, alice, "+1 (415) 555-0100", actor="key:sec")
        assert view.masked == "1******0100"
        assert add_caller_number(tx, alice, "tel:+14155550100", actor="key:sec").id == view.id  # idempotent
        with pytest.raises(AlreadyExists):
            add_caller_number(tx, bob, "0014155550100", actor="key:sec")
        with pytest.raises(StoreError, match=r"calling number 'call me' is not valid; use 3-15 digits"):
            add_caller_number(tx, bob, "call me", actor="key:sec")
    with store.transaction() as tx:
        for spelling in ("+14155550100", "sip:+14155550100@carrier.example;user=phone", "14155550100"):
            assert lookup_caller(tx, tid, spelling) == "alice"
        assert lookup_caller(tx, tid, "+14155550101") is None
        assert lookup_caller(tx, tid, "anonymous") is None  # withheld caller id: not identified, no error
        assert lookup_caller(tx, tid + 1, "+14155550100") is None  # tenant-scoped
        row = tx.session.execute(select(CallerNumber)).scalar_one()
        assert b"4155550100" not in row.number and "4155550100" not in row.number_hash  # never in clear
        assert [v.masked for v in caller_numbers(tx, alice)] == ["1******0100"]
        assert [e.action for e in _audit(tx)][-1] == "caller_number.add"
        assert "4155550100" not in json.dumps([e.details for e in _audit(tx)])


def _audit(tx):  # type: ignore[no-untyped-def]
    from voiceauth.store.models import AuditEvent

    return list(tx.session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars())


def test_mappings_survive_a_data_key_rotation_are_reencrypted_and_go_with_the_speaker(db_url: str) -> None:
    old = test_keyring(1)
    s1 = Store(create_db_engine(db_url), old)
    with s1.transaction() as tx:
        tid = tx.get_or_create_tenant(TENANT).id
        add_caller_number(tx, tx.create_speaker(tid, "carol", actor="t"), "+447700900123", actor="t")
    s1.dispose()
    new_key = np.random.default_rng(99).bytes(32)
    s2 = Store(create_db_engine(db_url), Keyring([new_key, np.random.default_rng(1).bytes(32)]))
    with s2.transaction() as tx:
        assert lookup_caller(tx, tid, "+44 7700 900123") == "carol"  # hashed under the old key, still found
    assert reencrypt_caller_numbers(s2) == 1 and reencrypt_caller_numbers(s2) == 0
    s2.dispose()
    s3 = Store(create_db_engine(db_url), Keyring([new_key]))  # the old key retired after the re-encryption
    with s3.transaction() as tx:
        carol = tx.require_speaker(tid, "carol")
        assert lookup_caller(tx, tid, "+447700900123") == "carol"
        (view,) = caller_numbers(tx, carol)
        remove_caller_number(tx, carol, view.id, actor="t")
        with pytest.raises(NotFound):
            remove_caller_number(tx, carol, view.id, actor="t")
        add_caller_number(tx, carol, "+447700900123", actor="t")
        tx.erase(carol, actor="t")
    assert s3.count_rows(CallerNumber) == 0
    s3.dispose()


def test_normalize_number() -> None:
    assert normalize_number(" +1 415.555.0100 ") == "14155550100"
    for bad in ("", "+", "12", "+1234567890123456", "415-CALL-NOW"):
        with pytest.raises(StoreError):
            normalize_number(bad)


def test_outcomes_written_by_one_worker_are_read_by_another(tmp_path: Path) -> None:
    """Two API processes (two stores on one database): a call recorded by one is served by the other's route."""
    url = f"sqlite+pysqlite:///{tmp_path / 'shared.db'}"
    settings = Settings(
        home=tmp_path, database_url=url, scoring_backend="cosine", ivr_tenant=TENANT, ivr_prompt_dir=tmp_path / "p"
    )
    stores = [open_store(settings) for _ in range(2)]
    with stores[0].transaction() as tx:
        tid = tx.get_or_create_tenant(TENANT, actor="t").id
        tx.create_speaker(tid, "cust-7", actor="t")
        tel = create_api_key(tx, tid, "telephony", actor="t")[1]
        sec = create_api_key(tx, tid, "security", actor="t")[1]
    apps = [
        create_app(
            settings, engine=FakeEngine(), store=s, scorer=CosineScorer(), operating_points=COSINE_OPERATING_POINTS
        )
        for s in stores
    ]
    with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
        ivr_a = get_ivr(apps[0])
        outcome = CallOutcome(call_id="CA-x1", tenant=TENANT, protocol="twilio", speaker_id="cust-7")
        outcome.decision, outcome.speech_seconds, outcome.decided_at_ms = "ACCEPT", 3.2, 3500
        outcome.staff = {"score": 80.1}
        ivr_a.record(outcome, final=True)
        assert ivr_a.call_log is not None
        ivr_a.call_log.flush()
        got = b.get("/v1/calls/CA-x1", headers={"X-API-KEY": tel}).json()
        assert got["decision"] == "ACCEPT" and got["decided_at_ms"] == 3500 and "score" not in got
        staff = b.get("/v1/calls/CA-x1", headers={"X-API-KEY": sec}).json()
        assert staff["score"] == 80.1
        listed = b.get("/v1/calls", params={"speaker_id": "cust-7"}, headers={"X-API-KEY": tel}).json()
        assert [c["call_id"] for c in listed["calls"]] == ["CA-x1"]
        assert b.get("/v1/calls/CA-none", headers={"X-API-KEY": tel}).status_code == 404

        # calling numbers through the API: security/admin only, masked out, 409 on another speaker's number
        path = "/v1/speakers/cust-7/phone-numbers"
        assert b.post(path, json={"number": "+15550142"}, headers={"Authorization": f"Bearer {tel}"}).status_code == 403
        r = b.post(path, json={"number": "+1 555 0142"}, headers={"Authorization": f"Bearer {sec}"})
        assert r.status_code == 201 and r.json()["number"] == "1***0142"
        bad = b.post(path, json={"number": "not a number"}, headers={"Authorization": f"Bearer {sec}"})
        assert bad.status_code == 400 and "not a number" in bad.json()["detail"]
        listed_numbers = a.get(path, headers={"Authorization": f"Bearer {sec}"}).json()["numbers"]
        assert [n["number"] for n in listed_numbers] == ["1***0142"]
        assert get_ivr(apps[1]).lookup_ani(TENANT, "tel:+15550142") == "cust-7"
        mid = listed_numbers[0]["id"]
        assert a.delete(f"{path}/{mid}", headers={"Authorization": f"Bearer {sec}"}).status_code == 204
        assert get_ivr(apps[1]).lookup_ani(TENANT, "+15550142") == ""
    for st in stores:
        st.dispose()


@pytest.mark.model
def test_audiohook_caller_identified_by_ani_without_speaker_id(live_server: LiveServer) -> None:
    store = live_server.ivr.verifier.store
    with store.transaction() as tx:
        george = tx.require_speaker(tx.tenant(TENANT).id, "george")
        add_caller_number(tx, george, "+1 317 555 0199", actor="test")
    sid = str(uuid.uuid4())
    audio = fsdd_digits("george", "2718281828", 43)

    async def run() -> list[dict]:  # type: ignore[type-arg]
        got: list[dict] = []  # type: ignore[type-arg]
        async with _connect(live_server, signed_headers(_authority(live_server), sid)) as ws:
            c = Client(ws, sid)
            await c.send(
                "open",
                {
                    "organizationId": str(uuid.uuid4()),
                    "conversationId": str(uuid.uuid4()),
                    "participant": {"id": str(uuid.uuid4()), "ani": "tel:+13175550199", "aniName": "", "dnis": ""},
                    "media": [MONO],
                    "language": "en-US",
                    "customConfig": {},
                },
            )
            assert (await c.recv())["type"] == "opened"
            await c.audio(audio)
            await c.send("close", {"reason": "end"})
            while (msg := await c.recv())["type"] != "closed":
                got.append(msg)
        return got

    msgs = asyncio.run(run())
    decisions = [m["parameters"]["entities"][0]["data"]["decision"] for m in msgs if m["type"] == "event"]
    assert decisions[:1] == ["ACCEPT"], msgs
    r = httpx.get(f"{live_server.url}/v1/calls/{sid}", headers={"X-API-KEY": TELEPHONY_KEY}).json()
    assert r["speaker_id"] == "george" and r["decision"] == "ACCEPT"
