"""Migration 0008 and bound associated data: every label beside a ciphertext is authenticated with it.

Rows written by revision 0007's code (associated data = table and owner only) are re-encrypted by the migration
and read back unchanged; afterwards a row whose ``space`` (or another label) was edited in the database fails its
integrity check: 409 ``voiceprint-unreadable``, audited, never a score. SQLite and PostgreSQL (``db_url``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select, update

from tests.api.conftest import bearer, sample
from tests.store.legacy import enrolled_at_revision
from voiceauth.api.main import create_app
from voiceauth.config import Settings
from voiceauth.embedding.fake import FakeEngine
from voiceauth.errors import ConfigError, StoreError, VoiceprintUnreadable
from voiceauth.scoring.base import CosineScorer
from voiceauth.store.crypto import Keyring
from voiceauth.store.db import create_db_engine, migrate
from voiceauth.store.keys import authenticate, create_api_key, twilio_tokens
from voiceauth.store.models import (
    ApiKey,
    AuditEvent,
    EnrollmentUtterance,
    Tenant,
    VerificationAttempt,
    Voiceprint,
    WatchlistEntry,
)
from voiceauth.store.repo import Store
from voiceauth.store.testing import test_keyring
from voiceauth.watchlist import COSINE_OPERATING_POINTS

OLD_KEY = "va_0badc0de_" + "k" * 43
SECRET = b"audiohook-client-secret-32-bytes"


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(192)
    return (v / np.linalg.norm(v)).astype(np.float32)


def _legacy_store(db_url: str) -> tuple[Store, dict[str, bytes]]:
    """A database at revision 0007 holding every kind of ciphertext as 0007 wrote it, then opened (-> 0008)."""
    engine = create_db_engine(db_url)
    keyring = test_keyring()
    enrolled_at_revision(engine, keyring, "0007", unit(1), unit(2))
    now = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
    with engine.begin() as conn:
        tenant = conn.execute(select(Tenant.id).where(Tenant.name == "acme")).scalar_one()
        kid, wblob = keyring.encrypt_vector(unit(3), f"voiceauth:watchlist_entries:{tenant}".encode())
        conn.execute(
            insert(WatchlistEntry.__table__).values(
                tenant_id=tenant, label="fraudster-1", key_id=kid, embedding=wblob, created_by="t", created_at=now
            )
        )
        row = conn.execute(
            insert(ApiKey.__table__).values(
                tenant_id=tenant,
                role="telephony",
                key_hash=hashlib.sha256(OLD_KEY.encode()).hexdigest(),
                prefix="0badc0de",
                label="old",
                created_at=now,
            )
        ).inserted_primary_key[0]
        _, secret_blob = keyring.encrypt(SECRET, f"voiceauth:api_keys.audiohook_secret:{row}".encode())
        conn.execute(
            update(ApiKey.__table__)
            .where(ApiKey.__table__.c.id == row)
            .values(audiohook_key_id=kid, audiohook_secret=secret_blob)
        )
        before = {
            "voiceprint": conn.execute(select(Voiceprint.__table__.c.embedding)).scalar_one(),
            "utterance": conn.execute(select(EnrollmentUtterance.__table__.c.embedding)).scalar_one(),
            "watchlist": wblob,
            "secret": secret_blob,
        }
    with pytest.raises(ConfigError, match="needs the data keys"):  # rows to re-encrypt, no keyring: refused
        migrate(engine)
    return Store(engine, keyring), before


def test_old_rows_are_re_encrypted_and_read_back_unchanged(db_url: str) -> None:
    store, before = _legacy_store(db_url)
    try:
        with store.transaction() as tx:
            spk = tx.require_speaker(tx.tenant("acme").id, "alice")
            vp = tx.voiceprint(spk)
            assert vp is not None and np.allclose(vp.embedding, unit(1))
            [utt] = tx.enrollment_utterances(spk)
            assert np.allclose(utt.embedding, unit(2))
            [(_, label, emb)] = tx.watchlist(spk.tenant_id)
            assert label == "fraudster-1" and np.allclose(emb, unit(3))
            principal = authenticate(tx, OLD_KEY)
            assert principal is not None and principal.audiohook_secret == SECRET
            # every ciphertext was written again (under the new associated data)
            assert tx.session.execute(select(Voiceprint.embedding)).scalar_one() != before["voiceprint"]
            assert tx.session.execute(select(EnrollmentUtterance.embedding)).scalar_one() != before["utterance"]
            assert tx.session.execute(select(WatchlistEntry.embedding)).scalar_one() != before["watchlist"]
            assert tx.session.execute(select(ApiKey.audiohook_secret)).scalar_one() != before["secret"]
        assert store.reencrypt() == 0  # all under the active key already
    finally:
        store.dispose()


def test_a_label_edited_in_the_database_fails_the_integrity_check(db_url: str) -> None:
    store, _ = _legacy_store(db_url)
    try:
        with store.transaction() as tx:
            for model, values in (
                (EnrollmentUtterance, {"narrowband": False}),
                (WatchlistEntry, {"label": "someone-else"}),
            ):
                tx.session.execute(update(model).values(**values))
        with pytest.raises(VoiceprintUnreadable), store.transaction() as tx:  # audited as the transaction fails
            tx.enrollment_utterances(tx.require_speaker(tx.tenant("acme").id, "alice"))
        with store.transaction() as tx:
            assert tx.watchlist(tx.tenant("acme").id) == []  # the edited entry is not trusted (and audited)
        with store.transaction() as tx:
            actions = [e.action for e in tx.session.execute(select(AuditEvent)).scalars()]
        assert "voiceprint.unreadable" in actions and "watchlist.unreadable" in actions
    finally:
        store.dispose()


def test_edited_space_is_409_voiceprint_unreadable_audited_never_a_score(db_url: str, tmp_path: Path) -> None:
    store, _ = _legacy_store(db_url)
    settings = Settings(data_dir=tmp_path / "d", offline=True, scoring_backend="cosine", replay_check=False)
    try:
        with store.transaction() as tx:
            t = tx.tenant("acme")
            tel = create_api_key(tx, t.id, "telephony", actor="test")[1]
            sec = create_api_key(tx, t.id, "security", actor="test")[1]
            tx.session.execute(update(Voiceprint).values(space="tel-0123abcd"))  # as if another network made it
        app = create_app(
            settings, engine=FakeEngine(), store=store, scorer=CosineScorer(), operating_points=COSINE_OPERATING_POINTS
        )
        with TestClient(app) as client:
            for key in (tel, sec):
                files = {"audio": ("a.wav", sample("george_c"), "audio/wav")}
                r = client.post("/v1/speakers/alice/verifications", files=files, headers=bearer(key))
                assert r.status_code == 409 and r.json()["code"] == "voiceprint-unreadable", r.json()
                assert "score" not in r.json() and "decision" not in r.json()
        with store.transaction() as tx:
            events = list(tx.session.execute(select(AuditEvent).where(AuditEvent.action == "voiceprint.unreadable")))
            assert len(events) == 2
            assert json.loads(events[0][0].details) == {"table": "voiceprints"}
            assert tx.session.execute(select(func.count()).select_from(VerificationAttempt)).scalar_one() == 0
        assert store.verify_audit_chain().ok
    finally:
        store.dispose()


def test_twilio_tokens_are_encrypted_bound_and_re_encrypted_by_a_data_key_rotation(db_url: str) -> None:
    keyring = test_keyring()
    store = Store(create_db_engine(db_url), keyring)
    token = "0123456789abcdef0123456789abcdef"
    try:
        with store.transaction() as tx:
            acme, other = tx.get_or_create_tenant("acme"), tx.get_or_create_tenant("other")
            create_api_key(tx, acme.id, "telephony", actor="test", twilio_auth_token=token)
            with pytest.raises(StoreError, match="telephony"):
                create_api_key(tx, acme.id, "security", actor="test", twilio_auth_token=token)
            with pytest.raises(StoreError, match="not valid"):
                create_api_key(tx, acme.id, "telephony", actor="test", twilio_auth_token="short")
        with store.transaction() as tx:
            assert twilio_tokens(tx, "acme") == [token] and twilio_tokens(tx, "other") == []
            assert twilio_tokens(tx, "nobody") is None
            blob = tx.session.execute(select(ApiKey.twilio_auth_token).where(ApiKey.tenant_id == acme.id)).scalar_one()
            assert token.encode() not in blob
        new_key = np.random.default_rng(8).bytes(32)
        rotating = Store(store.engine, Keyring([new_key, keyring_bytes()]), clock=store.clock)
        assert rotating.reencrypt() == 1
        only_new = Store(store.engine, Keyring([new_key]), clock=store.clock)
        with only_new.transaction() as tx:
            assert twilio_tokens(tx, "acme") == [token]
            # the token moved to another tenant's key row does not decrypt there: not used
            tx.session.execute(update(ApiKey).where(ApiKey.tenant_id == acme.id).values(tenant_id=other.id))
        with only_new.transaction() as tx:
            assert twilio_tokens(tx, "other") == [] and twilio_tokens(tx, "acme") == []
    finally:
        store.dispose()


def keyring_bytes() -> bytes:
    """The raw key of :func:`test_keyring` (seed 7)."""
    return np.random.default_rng(7).bytes(32)
