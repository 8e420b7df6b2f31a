"""Dual-band enrolment: the full-band voiceprint next to the telephone-band one (synthetic embeddings)."""

from __future__ import annotations

import numpy as np
import pytest

from enrollment.policy import EnrollmentPolicy, combine_embeddings, full_band_voiceprint
from enrollment.session import Enroller
from tests.helpers import q, voice
from voiceauth.scoring.base import CosineScorer
from voiceauth.store.repo import Store, StoredVoiceprint
from voiceauth.watchlist import COSINE_OPERATING_POINTS


@pytest.fixture
def enroller(store: Store) -> Enroller:
    e = Enroller(store, CosineScorer(), COSINE_OPERATING_POINTS, EnrollmentPolicy(min_speech_s=8.0))
    e.register("acme", "alice", consent_method="ivr", consent_text_version="v1", actor="test")
    return e


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


def stored(store: Store) -> StoredVoiceprint | None:
    with store.transaction() as tx:
        return tx.voiceprint(tx.require_speaker(tx.tenant("acme").id, "alice"))


def test_full_band_voiceprint_is_the_weighted_mean_of_those_that_have_one(rng: np.random.Generator) -> None:
    a, b = voice(rng.standard_normal(192), rng), voice(rng.standard_normal(192), rng)
    assert full_band_voiceprint([a, None, b], [5.0, 9.0, 3.0], 8.0) is not None
    np.testing.assert_allclose(
        full_band_voiceprint([a, None, b], [5.0, 9.0, 3.0], 8.0), combine_embeddings([a, b], [5.0, 3.0])
    )
    assert full_band_voiceprint([a, None, b], [5.0, 9.0, 2.9], 8.0) is None  # 7.9 s of full band < 8 s
    assert full_band_voiceprint([None, None], [9.0, 9.0], 8.0) is None
    assert full_band_voiceprint([], [], 8.0) is None


def test_full_band_voiceprint_needs_the_minimum_speech_in_wideband_utterances(
    store: Store, enroller: Enroller, rng: np.random.Generator
) -> None:
    tel, wide = rng.standard_normal(192), rng.standard_normal(192)
    # a phone enrolment (no full band) makes the usable telephone-band voiceprint on its own
    r = enroller.enroll("acme", "alice", voice(tel, rng), q(5.0), narrowband=True)
    r = enroller.enroll("acme", "alice", voice(tel, rng), q(4.0), narrowband=True)
    assert r.enrolled
    vp = stored(store)
    assert vp is not None and vp.embedding_wide is None
    # wideband utterances: the full band appears once they hold 8 s by themselves
    w1, w2 = voice(wide, rng), voice(wide, rng)
    r = enroller.enroll("acme", "alice", voice(tel, rng), q(5.0), narrowband=False, embedding_wide=w1)
    assert r.accepted
    vp = stored(store)
    assert vp is not None and vp.embedding_wide is None  # 5 s of full band
    r = enroller.enroll("acme", "alice", voice(tel, rng), q(3.5), narrowband=False, embedding_wide=w2)
    assert r.accepted and r.utterances == 4 and r.net_speech_s == 17.5
    vp = stored(store)
    assert vp is not None and vp.embedding_wide is not None and vp.n_utterances == 4
    np.testing.assert_allclose(vp.embedding_wide, combine_embeddings([w1, w2], [5.0, 3.5]), atol=1e-6)
    # the telephone-band voiceprint is built from every utterance, as before
    with store.transaction() as tx:
        utts = tx.enrollment_utterances(tx.require_speaker(tx.tenant("acme").id, "alice"))
    np.testing.assert_allclose(
        vp.embedding, combine_embeddings([u.embedding for u in utts], [u.net_speech_s for u in utts]), atol=1e-6
    )


def test_refused_utterance_stores_no_full_band(store: Store, enroller: Enroller, rng: np.random.Generator) -> None:
    alice, mallory = rng.standard_normal(192), rng.standard_normal(192)
    for _ in range(3):
        assert enroller.enroll("acme", "alice", voice(alice, rng), q(3.0), narrowband=True).accepted
    r = enroller.enroll(
        "acme", "alice", voice(mallory, rng), q(9.0), narrowband=False, embedding_wide=voice(mallory, rng)
    )
    assert r.feedback == ("SPEAKER_MISMATCH",)  # poisoning is judged in the telephone band
    vp = stored(store)
    assert vp is not None and vp.embedding_wide is None


def test_reenrolment_replaces_both_bands(store: Store, enroller: Enroller, rng: np.random.Generator) -> None:
    alice = rng.standard_normal(192)
    for _ in range(2):
        enroller.enroll("acme", "alice", voice(alice, rng), q(5.0), narrowband=False, embedding_wide=voice(alice, rng))
    vp = stored(store)
    assert vp is not None and vp.embedding_wide is not None
    # re-enrolment over the phone: the old full band is gone with the old utterances
    enroller.enroll("acme", "alice", voice(alice, rng), q(9.0), narrowband=True, replace=True)
    vp = stored(store)
    assert vp is not None and vp.embedding_wide is None and vp.n_utterances == 1
