"""Full-band embeddings in the store: migration 0005 over existing rows, encryption, rotation and removal."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import select

from tests.store.legacy import enrolled_at_revision
from voiceauth.audio.types import Quality
from voiceauth.errors import VoiceprintUnreadable
from voiceauth.store.crypto import Keyring
from voiceauth.store.db import create_db_engine
from voiceauth.store.models import EnrollmentUtterance, Voiceprint
from voiceauth.store.repo import Store, StoreTx
from voiceauth.store.testing import FakeClock, test_keyring

Q = Quality(net_speech_s=5.0, snr_db=30.0, clipping_ratio=0.0, level_dbfs=-20.0)


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(192)
    return (v / np.linalg.norm(v)).astype(np.float32)


def speaker(tx: StoreTx, ref: str = "alice"):  # type: ignore[no-untyped-def]
    t = tx.get_or_create_tenant("acme", actor="test")
    spk = tx.speaker(t.id, ref)
    if spk is None:
        spk = tx.create_speaker(t.id, ref, actor="test")
        tx.record_consent(spk, method="ivr", text_version="v1", actor="test")
    return spk


def save_both(tx: StoreTx, ref: str = "alice") -> None:
    spk = speaker(tx, ref)
    tx.add_enrollment_utterance(spk, unit(1), Q, narrowband=False, embedding_wide=unit(2))
    tx.add_enrollment_utterance(spk, unit(3), Q, narrowband=True)  # phone audio: no full band
    tx.save_voiceprint(
        spk,
        unit(4),
        net_speech_s=10.0,
        n_utterances=2,
        narrowband=False,
        retention=dt.timedelta(days=30),
        embedding_wide=unit(5),
    )


def test_upgrade_from_0004_keeps_rows_and_gives_them_no_full_band(db_url: str) -> None:
    engine = create_db_engine(db_url)
    keyring = test_keyring()
    assert "embedding_wide" not in enrolled_at_revision(engine, keyring, "0004", unit(4), utterance=unit(1))
    store = Store(engine, keyring, clock=FakeClock())  # migrates to head
    try:
        with store.transaction() as tx:
            assert tx.session.execute(select(Voiceprint.embedding_wide)).scalar_one() is None
            assert tx.session.execute(select(EnrollmentUtterance.embedding_wide)).scalar_one() is None
            spk = tx.require_speaker(tx.tenant("acme").id, "alice")
            vp = tx.voiceprint(spk)
            assert vp is not None and vp.embedding_wide is None
            np.testing.assert_array_equal(vp.embedding, unit(4))
            (u,) = tx.enrollment_utterances(spk)
            assert u.embedding_wide is None
            np.testing.assert_array_equal(u.embedding, unit(1))
            save_both(tx)  # the new column is writable after the upgrade
        with store.transaction() as tx:
            vp = tx.voiceprint(tx.require_speaker(tx.tenant("acme").id, "alice"))
            assert vp is not None and vp.embedding_wide is not None
    finally:
        store.dispose()


def test_full_band_round_trip_is_encrypted_under_its_own_aad(store: Store) -> None:
    with store.transaction() as tx:
        save_both(tx)
    with store.transaction() as tx:
        spk = tx.require_speaker(tx.tenant("acme").id, "alice")
        vp = tx.voiceprint(spk)
        assert vp is not None and vp.embedding_wide is not None
        np.testing.assert_array_equal(vp.embedding_wide, unit(5))
        utts = tx.enrollment_utterances(spk)
        assert utts[0].embedding_wide is not None and utts[1].embedding_wide is None
        np.testing.assert_array_equal(utts[0].embedding_wide, unit(2))
        row = tx.session.get(Voiceprint, spk.id)
        assert row is not None and row.embedding_wide is not None
        assert unit(5).tobytes() not in row.embedding_wide  # ciphertext, not the vector
        row.embedding_wide = row.embedding  # a telephone-band blob moved into the full-band column
    with pytest.raises(VoiceprintUnreadable), store.transaction() as tx:
        tx.voiceprint(tx.require_speaker(tx.tenant("acme").id, "alice"))


def test_saving_a_voiceprint_without_full_band_drops_the_old_one(store: Store) -> None:
    with store.transaction() as tx:
        save_both(tx)
        spk = speaker(tx)
        tx.save_voiceprint(
            spk, unit(6), net_speech_s=10.0, n_utterances=2, narrowband=True, retention=dt.timedelta(days=30)
        )
        vp = tx.voiceprint(spk)
        assert vp is not None and vp.embedding_wide is None


def test_rotation_reencrypts_the_full_band(store: Store) -> None:
    with store.transaction() as tx:
        save_both(tx)
    old_key, new_key = np.random.default_rng(7).bytes(32), np.random.default_rng(8).bytes(32)  # test_keyring()'s
    rotating = Store(store.engine, Keyring([new_key, old_key]), clock=store.clock)
    assert rotating.reencrypt(batch=1) == 2 + 1  # two utterances, the voiceprint
    only_new = Store(store.engine, Keyring([new_key]), clock=store.clock)
    with only_new.transaction() as tx:
        spk = tx.require_speaker(tx.tenant("acme").id, "alice")
        vp = tx.voiceprint(spk)
        assert vp is not None and vp.embedding_wide is not None
        np.testing.assert_array_equal(vp.embedding_wide, unit(5))
        np.testing.assert_array_equal(vp.embedding, unit(4))
        wide = [u.embedding_wide for u in tx.enrollment_utterances(spk)]
        assert wide[0] is not None and wide[1] is None
        np.testing.assert_array_equal(wide[0], unit(2))


@pytest.mark.parametrize("how", ["re-enrol", "opt-out", "erase", "expire"])
def test_removal_takes_the_full_band_too(store: Store, how: str) -> None:
    with store.transaction() as tx:
        save_both(tx)
        save_both(tx, "bob")
    if how == "expire":
        assert isinstance(store.clock, FakeClock)
        store.clock.advance(days=31)
        assert store.purge_expired() == 2
    else:
        with store.transaction() as tx:
            spk = tx.require_speaker(tx.tenant("acme").id, "alice")
            {
                "re-enrol": tx.clear_enrollment,
                "opt-out": lambda s: tx.opt_out(s, actor="test"),
                "erase": lambda s: tx.erase(s, actor="test"),
            }[how](spk)
    wide_rows = store.count_rows(EnrollmentUtterance) + store.count_rows(Voiceprint)
    with store.transaction() as tx:
        left = [
            r
            for m in (EnrollmentUtterance, Voiceprint)
            for r in tx.session.execute(select(m.embedding_wide).where(m.embedding_wide.is_not(None))).scalars()
        ]
    assert len(left) == (0 if how == "expire" else 2)  # bob's utterance and voiceprint remain
    assert wide_rows == (0 if how == "expire" else 3)
