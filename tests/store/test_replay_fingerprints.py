"""Replay fingerprints in the store: pruned beyond retention, removed with erasure and opt-out."""

from __future__ import annotations

from voiceauth.store.models import ReplayFingerprint
from voiceauth.store.repo import Store
from voiceauth.store.testing import FakeClock


def _speaker(store: Store, ref: str) -> None:
    with store.transaction() as tx:
        t = tx.get_or_create_tenant("acme")
        tx.create_speaker(t.id, ref, actor="test")


def test_history_is_pruned_beyond_retention(store: Store, clock: FakeClock) -> None:
    _speaker(store, "c-1")
    with store.transaction() as tx:
        sp = tx.require_speaker(tx.tenant("acme").id, "c-1")
        tx.add_replay_fingerprint(sp, b"old")
    clock.advance(100.0)
    with store.transaction() as tx:
        sp = tx.require_speaker(tx.tenant("acme").id, "c-1")
        tx.add_replay_fingerprint(sp, b"new")
        assert [fp for _, fp in tx.replay_history(sp, retention_s=1000.0)] == [b"old", b"new"]
        assert [fp for _, fp in tx.replay_history(sp, retention_s=50.0)] == [b"new"]
    assert store.count_rows(ReplayFingerprint) == 1


def test_erasure_and_opt_out_remove_fingerprints(store: Store) -> None:
    _speaker(store, "c-1")
    _speaker(store, "c-2")
    with store.transaction() as tx:
        tid = tx.tenant("acme").id
        for ref in ("c-1", "c-2"):
            tx.add_replay_fingerprint(tx.require_speaker(tid, ref), ref.encode())
    assert store.count_rows(ReplayFingerprint) == 2
    with store.transaction() as tx:
        tx.erase(tx.require_speaker(tid, "c-1"), actor="test")
    assert store.count_rows(ReplayFingerprint) == 1
    with store.transaction() as tx:
        tx.opt_out(tx.require_speaker(tid, "c-2"), actor="test")
    assert store.count_rows(ReplayFingerprint) == 0


def test_history_keeps_the_newest_attempts_only(store: Store, clock: FakeClock) -> None:
    _speaker(store, "c-1")
    with store.transaction() as tx:
        sp = tx.require_speaker(tx.tenant("acme").id, "c-1")
        for i in range(5):
            tx.add_replay_fingerprint(sp, f"fp{i}".encode())
            clock.advance(1.0)
    with store.transaction() as tx:
        sp = tx.require_speaker(tx.tenant("acme").id, "c-1")
        assert [fp for _, fp in tx.replay_history(sp, retention_s=1000.0, keep=3)] == [b"fp2", b"fp3", b"fp4"]
    assert store.count_rows(ReplayFingerprint) == 3  # the older ones are gone, not just hidden
