"""The store, run identically on SQLite and PostgreSQL (``db_url`` is parametrised in conftest)."""

from __future__ import annotations

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from enrollment.session import Enroller
from voiceauth.audio.types import Quality
from voiceauth.errors import AlreadyExists, ConsentRequired, DataKeyError, NotFound
from voiceauth.scoring.base import CosineScorer
from voiceauth.store.crypto import Keyring
from voiceauth.store.models import (
    AuditEvent,
    Base,
    ConsentRecord,
    EnrollmentUtterance,
    Lockout,
    Speaker,
    VerificationAttempt,
    Voiceprint,
)
from voiceauth.store.repo import Store, StoreTx
from voiceauth.store.testing import FakeClock, test_keyring
from voiceauth.verification import Decision, Verifier
from voiceauth.watchlist import COSINE_OPERATING_POINTS

Q3 = Quality(net_speech_s=3.0, snr_db=30.0, clipping_ratio=0.0, level_dbfs=-20.0)
SPEAKER_TABLES = (ConsentRecord, EnrollmentUtterance, Voiceprint, Lockout, VerificationAttempt)


def voice(base: np.ndarray, rng: np.random.Generator, noise: float = 0.15) -> np.ndarray:
    v = base + noise * rng.standard_normal(base.size)
    return (v / np.linalg.norm(v)).astype(np.float32)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1)


@pytest.fixture
def alice(rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(192)


def services(store: Store) -> tuple[Enroller, Verifier]:
    s = CosineScorer()
    return Enroller(store, s, COSINE_OPERATING_POINTS), Verifier(store, s, COSINE_OPERATING_POINTS)


def enrol(enroller: Enroller, ref: str, base: np.ndarray, rng: np.random.Generator, n: int = 3) -> None:
    enroller.register("acme", ref, consent_method="ivr", consent_text_version="v1", actor="test")
    for _ in range(n):
        assert enroller.enroll("acme", ref, voice(base, rng), Q3, narrowband=True).accepted


def speaker_id(store: Store, ref: str) -> int:
    with store.transaction() as tx:
        return tx.require_speaker(tx.tenant("acme").id, ref).id


def test_migrations_create_exactly_the_models(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_speakers_are_unique_per_tenant_and_need_a_tenant(store: Store) -> None:
    with store.transaction() as tx:
        a = tx.get_or_create_tenant("acme")
        b = tx.get_or_create_tenant("globex")
        tx.create_speaker(a.id, "c-1", actor="t")
        tx.create_speaker(b.id, "c-1", actor="t")  # same reference, other tenant: fine
    with pytest.raises(AlreadyExists, match="c-1"), store.transaction() as tx:
        tx.create_speaker(tx.tenant("acme").id, "c-1", actor="t")
    with pytest.raises(NotFound, match="nope"), store.transaction() as tx:
        tx.tenant("nope")


def test_embeddings_are_encrypted_and_bound_to_their_row(
    store: Store, alice: np.ndarray, rng: np.random.Generator
) -> None:
    enroller, _ = services(store)
    enrol(enroller, "alice", alice, rng)
    enrol(enroller, "bob", rng.standard_normal(192), rng)
    with store.transaction() as tx:
        a, b = (tx.require_speaker(tx.tenant("acme").id, r) for r in ("alice", "bob"))
        stored = tx.voiceprint(a)
        assert stored is not None and stored.n_utterances == 3 and stored.net_speech_s == pytest.approx(9.0)
        rows = tx.session.execute(select(Voiceprint)).scalars().all()
        for r in rows:
            assert r.key_id == store.keyring.active_id
            assert np.asarray(stored.embedding).astype("<f4").tobytes() not in r.embedding
    # a ciphertext copied onto another speaker's row does not decrypt (associated data binds it)
    with pytest.raises(DataKeyError, match="authentication"), store.transaction() as tx:
        va, vb = tx.session.get(Voiceprint, a.id), tx.session.get(Voiceprint, b.id)
        assert va is not None and vb is not None
        vb.embedding = va.embedding
        tx.voiceprint(b)


def test_unknown_key_id_is_refused(store: Store, alice: np.ndarray, rng: np.random.Generator) -> None:
    enroller, _ = services(store)
    enrol(enroller, "alice", alice, rng)
    other = Store(store.engine, test_keyring(seed=99), clock=store.clock)
    with pytest.raises(DataKeyError, match="not in the keyring"), other.transaction() as tx:
        tx.voiceprint(tx.require_speaker(tx.tenant("acme").id, "alice"))


def test_rotation_reencrypts_every_row_without_losing_data(
    store: Store, alice: np.ndarray, rng: np.random.Generator
) -> None:
    enroller, _ = services(store)
    enrol(enroller, "alice", alice, rng)
    with store.transaction() as tx:
        tx.add_watchlist_entry(tx.tenant("acme").id, "fraud-1", voice(alice, rng), actor="sec")
        before = tx.voiceprint(tx.require_speaker(tx.tenant("acme").id, "alice"))
    old_key, new_key = np.random.default_rng(7).bytes(32), np.random.default_rng(8).bytes(32)
    rotating = Store(store.engine, Keyring([new_key, old_key]), clock=store.clock)
    assert rotating.reencrypt(batch=2) == 3 + 1 + 1  # utterances, voiceprint, watchlist entry
    only_new = Store(store.engine, Keyring([new_key]), clock=store.clock)
    with only_new.transaction() as tx:
        after = tx.voiceprint(tx.require_speaker(tx.tenant("acme").id, "alice"))
        assert len(tx.watchlist(tx.tenant("acme").id)) == 1
        assert {r.key_id for r in tx.session.execute(select(EnrollmentUtterance)).scalars()} == {
            only_new.keyring.active_id
        }
    assert before is not None and after is not None
    np.testing.assert_array_equal(before.embedding, after.embedding)
    assert only_new.verify_audit_chain().ok


def test_crash_between_enrolment_writes_leaves_no_half_written_voiceprint(
    store: Store, alice: np.ndarray, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    enroller, _ = services(store)
    enrol(enroller, "alice", alice, rng, n=2)  # 6 s: no voiceprint yet
    sid = speaker_id(store, "alice")
    events = store.count_rows(AuditEvent)

    def crash(*_a: object, **_k: object) -> None:
        raise RuntimeError("power cut between writes")

    monkeypatch.setattr(StoreTx, "save_voiceprint", crash)  # the utterance row is already flushed by then
    with pytest.raises(RuntimeError, match="power cut"):
        enroller.enroll("acme", "alice", voice(alice, rng), Q3, narrowband=True)
    assert store.count_rows(EnrollmentUtterance, speaker_id=sid) == 2
    assert store.count_rows(Voiceprint, speaker_id=sid) == 0
    assert store.count_rows(AuditEvent) == events
    monkeypatch.undo()
    assert enroller.enroll("acme", "alice", voice(alice, rng), Q3, narrowband=True).enrolled
    with store.transaction() as tx:
        vp_before = tx.voiceprint(tx.session.get(Speaker, sid))  # type: ignore[arg-type]
    # a crash while updating an existing voiceprint keeps the old one intact
    monkeypatch.setattr(StoreTx, "audit", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        enroller.enroll("acme", "alice", voice(alice, rng), Q3, narrowband=True)
    monkeypatch.undo()
    with store.transaction() as tx:
        vp_after = tx.voiceprint(tx.session.get(Speaker, sid))  # type: ignore[arg-type]
    assert vp_before is not None and vp_after is not None and vp_after.n_utterances == 3
    np.testing.assert_array_equal(vp_before.embedding, vp_after.embedding)
    assert store.count_rows(EnrollmentUtterance, speaker_id=sid) == 3
    assert store.verify_audit_chain().ok


def test_erasure_removes_every_row_of_the_speaker(store: Store, alice: np.ndarray, rng: np.random.Generator) -> None:
    enroller, verifier = services(store)
    enrol(enroller, "alice", alice, rng)
    enrol(enroller, "bob", rng.standard_normal(192), rng)
    for _ in range(2):
        verifier.verify("acme", "alice", voice(alice, rng), net_speech_s=3.0, narrowband=True)
    sid = speaker_id(store, "alice")
    assert all(store.count_rows(m, speaker_id=sid) > 0 for m in SPEAKER_TABLES)
    with store.transaction() as tx:
        tx.erase(tx.require_speaker(tx.tenant("acme").id, "alice"), actor="dpo")
    assert all(store.count_rows(m, speaker_id=sid) == 0 for m in SPEAKER_TABLES)
    assert store.count_rows(Speaker, id=sid) == 0
    assert store.count_rows(Voiceprint) == 1  # bob's is untouched
    with store.transaction() as tx:
        audit_text = " ".join(f"{e.subject} {e.details}" for e in tx.session.execute(select(AuditEvent)).scalars())
    assert "alice" not in audit_text and "p:" in audit_text  # pseudonymous record only
    assert store.verify_audit_chain().ok
    assert verifier.verify("acme", "alice", voice(alice, rng), net_speech_s=3.0, narrowband=True).decision == (
        Decision.NOT_ENROLLED
    )


def test_opt_out_deletes_biometrics_and_blocks_until_new_consent(
    store: Store, alice: np.ndarray, rng: np.random.Generator
) -> None:
    enroller, verifier = services(store)
    enrol(enroller, "alice", alice, rng)
    sid = speaker_id(store, "alice")
    with store.transaction() as tx:
        tx.opt_out(tx.require_speaker(tx.tenant("acme").id, "alice"), actor="agent")
    assert store.count_rows(EnrollmentUtterance, speaker_id=sid) == 0
    assert store.count_rows(Voiceprint, speaker_id=sid) == 0
    r = verifier.verify("acme", "alice", voice(alice, rng), net_speech_s=3.0, narrowband=True)
    assert r.decision == Decision.OPTED_OUT
    with pytest.raises(ConsentRequired, match="alice"):
        enroller.enroll("acme", "alice", voice(alice, rng), Q3, narrowband=True)
    with store.transaction() as tx:
        spk = tx.require_speaker(tx.tenant("acme").id, "alice")
        tx.record_consent(spk, method="web", text_version="v2", actor="agent")
    assert enroller.enroll("acme", "alice", voice(alice, rng), Q3, narrowband=True).accepted


def test_retention_expires_then_purges_unused_voiceprints(
    store: Store, clock: FakeClock, alice: np.ndarray, rng: np.random.Generator
) -> None:
    enroller, verifier = services(store)
    enrol(enroller, "alice", alice, rng)
    enrol(enroller, "bob", rng.standard_normal(192), rng)
    clock.advance(days=3 * 365 - 1)
    assert verifier.verify("acme", "alice", voice(alice, rng), net_speech_s=3.0, narrowband=True).decision == (
        Decision.ACCEPT
    )  # use extends alice's retention; bob's lapses
    clock.advance(days=2)
    assert store.purge_expired() == 1
    assert store.count_rows(Voiceprint) == 1
    bob = verifier.verify("acme", "bob", voice(alice, rng), net_speech_s=3.0, narrowband=True)
    assert bob.decision == Decision.EXPIRED


def test_audit_chain_detects_an_edited_or_removed_row(
    store: Store, alice: np.ndarray, rng: np.random.Generator
) -> None:
    enroller, _ = services(store)
    enrol(enroller, "alice", alice, rng)
    report = store.verify_audit_chain()
    assert report.ok and report.events == 6  # tenant, speaker, consent, 3 utterances
    with store.engine.begin() as c:
        c.execute(text("UPDATE audit_events SET outcome = 'refused' WHERE seq = 4"))
    bad = store.verify_audit_chain()
    assert not bad.ok and bad.first_bad_seq == 4 and "altered" in bad.reason
    with store.engine.begin() as c:
        c.execute(text("UPDATE audit_events SET outcome = 'accepted' WHERE seq = 4"))
    assert store.verify_audit_chain().ok
    with store.engine.begin() as c:
        row = c.execute(text("SELECT * FROM audit_events WHERE seq = 3")).mappings().one()
        c.execute(text("DELETE FROM audit_events WHERE seq = 3"))
    bad = store.verify_audit_chain()
    assert not bad.ok and bad.first_bad_seq == 3 and "missing" in bad.reason
    with store.engine.begin() as c:
        c.execute(text("INSERT INTO audit_events VALUES " + "(" + ",".join(f":{k}" for k in row) + ")"), dict(row))
        c.execute(text("DELETE FROM audit_events WHERE seq = 6"))
    bad = store.verify_audit_chain()
    assert not bad.ok and "removed" in bad.reason


def test_concurrent_failures_are_all_counted_and_the_chain_stays_linear(
    store: Store, alice: np.ndarray, rng: np.random.Generator
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from voiceauth.verification import LockoutPolicy, VerificationPolicy

    enroller, _ = services(store)
    enrol(enroller, "alice", alice, rng)
    verifier = Verifier(
        store,
        CosineScorer(),
        COSINE_OPERATING_POINTS,
        VerificationPolicy(lockout=LockoutPolicy(failures=50, disable_failures=100)),
    )
    probes = [voice(rng.standard_normal(192), rng) for _ in range(12)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        decisions = list(
            pool.map(lambda p: verifier.verify("acme", "alice", p, net_speech_s=4.0, narrowband=True).decision, probes)
        )
    assert decisions == [Decision.REJECT] * 12
    with store.transaction() as tx:
        assert tx.lockout(tx.require_speaker(tx.tenant("acme").id, "alice")).consecutive_failures == 12
    report = store.verify_audit_chain()
    assert report.ok and report.events == 6 + 12
