"""Enrolment: progress, refusal codes, consent, poisoning, re-enrolment, watchlist (SQLite; synthetic + real)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from enrollment.policy import EnrollmentPolicy, combine_embeddings, progress_percent
from enrollment.session import Enroller
from tests.helpers import q, voice
from voiceauth.errors import ConsentRequired, NotFound
from voiceauth.scoring.base import CosineScorer
from voiceauth.store.repo import Store
from voiceauth.watchlist import COSINE_OPERATING_POINTS

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "audio_samples"


@pytest.fixture
def enroller(store: Store) -> Enroller:
    e = Enroller(store, CosineScorer(), COSINE_OPERATING_POINTS)
    e.register("acme", "alice", consent_method="ivr", consent_text_version="v1", actor="test")
    return e


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(5)


def test_progress_reaches_usable_at_8_s_and_100_at_20_s(enroller: Enroller, rng: np.random.Generator) -> None:
    base = rng.standard_normal(192)
    seen = []
    for _ in range(7):
        r = enroller.enroll("acme", "alice", voice(base, rng), q(3.0), narrowband=True)
        assert r.accepted and r.feedback == ("OK",)
        seen.append((r.progress, r.enrolled))
    assert seen == [(15.0, False), (30.0, False), (45.0, True), (60.0, True), (75.0, True), (90.0, True), (100.0, True)]
    st = enroller.status("acme", "alice")
    assert st.utterances == 7 and st.net_speech_s == pytest.approx(21.0) and st.progress == 100.0


def test_refused_utterances_carry_feedback_codes_and_change_nothing(
    enroller: Enroller, rng: np.random.Generator
) -> None:
    base = rng.standard_normal(192)
    enroller.enroll("acme", "alice", voice(base, rng), q(4.0), narrowband=True)
    cases = [
        (q(4.0, ("TOO_NOISY", "CLIPPED")), voice(base, rng), ("TOO_NOISY", "CLIPPED")),
        (q(0.0, ("NO_SPEECH",)), None, ("NO_SPEECH",)),
        (q(0.5), voice(base, rng), ("TOO_SHORT",)),  # below enroll_min_utterance_speech_s
        (q(4.0), None, ("NO_SPEECH",)),  # nothing to embed
    ]
    for quality, emb, codes in cases:
        r = enroller.enroll("acme", "alice", emb, quality, narrowband=True)
        assert not r.accepted and r.feedback == codes
        assert r.progress == 20.0 and r.utterances == 1


def test_no_enrolment_without_consent(store: Store, enroller: Enroller, rng: np.random.Generator) -> None:
    with store.transaction() as tx:
        tx.create_speaker(tx.tenant("acme").id, "no-consent", actor="test")
    with pytest.raises(ConsentRequired, match="no-consent"):
        enroller.enroll("acme", "no-consent", voice(rng.standard_normal(192), rng), q(), narrowband=True)
    with pytest.raises(NotFound, match="ghost"):
        enroller.enroll("acme", "ghost", voice(rng.standard_normal(192), rng), q(), narrowband=True)
    with store.transaction() as tx:
        assert tx.enrollment_utterances(tx.require_speaker(tx.tenant("acme").id, "no-consent")) == []


def test_a_different_speaker_is_refused_as_poisoning(enroller: Enroller, rng: np.random.Generator) -> None:
    alice, mallory = rng.standard_normal(192), rng.standard_normal(192)
    enroller.enroll("acme", "alice", voice(alice, rng), q(4.0), narrowband=True)
    r = enroller.enroll("acme", "alice", voice(mallory, rng), q(4.0), narrowband=True)
    assert not r.accepted and r.feedback == ("SPEAKER_MISMATCH",) and r.utterances == 1
    assert r.consistency_score is not None and r.consistency_score < COSINE_OPERATING_POINTS["convenience"]
    ok = enroller.enroll("acme", "alice", voice(alice, rng), q(4.0), narrowband=True)
    assert ok.accepted and ok.consistency_score is not None and ok.consistency_score > 90


def test_reenrolment_replaces_everything_before(enroller: Enroller, store: Store, rng: np.random.Generator) -> None:
    old, new = rng.standard_normal(192), rng.standard_normal(192)
    for _ in range(3):
        enroller.enroll("acme", "alice", voice(old, rng), q(3.0), narrowband=True)
    r = enroller.enroll("acme", "alice", voice(new, rng), q(3.0), narrowband=True, replace=True)
    assert r.accepted and r.utterances == 1 and not r.enrolled  # the old voiceprint is gone with it
    for _ in range(2):
        r = enroller.enroll("acme", "alice", voice(new, rng), q(3.0), narrowband=True)
    assert r.enrolled
    with store.transaction() as tx:
        vp = tx.voiceprint(tx.require_speaker(tx.tenant("acme").id, "alice"))
    assert vp is not None and float(vp.embedding @ (new / np.linalg.norm(new))) > 0.9


def test_watchlist_is_searched_on_every_enrolment(enroller: Enroller, store: Store, rng: np.random.Generator) -> None:
    fraud = rng.standard_normal(192)
    with store.transaction() as tx:
        entry = tx.add_watchlist_entry(tx.tenant("acme").id, "fraud ring 7", voice(fraud, rng), actor="sec")
    clean = enroller.enroll("acme", "alice", voice(rng.standard_normal(192), rng), q(), narrowband=True)
    assert clean.watchlist_hit is None
    enroller.register("acme", "bob", consent_method="ivr", consent_text_version="v1", actor="test")
    flagged = enroller.enroll("acme", "bob", voice(fraud, rng), q(), narrowband=True)
    assert flagged.watchlist_hit is not None and flagged.watchlist_hit.entry_id == entry
    assert flagged.watchlist_hit.label == "fraud ring 7" and flagged.watchlist_hit.score > 90


def test_pure_rules() -> None:
    assert progress_percent(0, 20) == 0.0 and progress_percent(25, 20) == 100.0 and progress_percent(7, 20) == 35.0
    a = np.array([1, 0, 0], dtype=np.float32)
    b = np.array([0, 2, 0], dtype=np.float32)  # norms do not matter, speech seconds weigh
    v = combine_embeddings([a, b], [3.0, 1.0])
    assert float(np.linalg.norm(v)) == pytest.approx(1.0) and v[0] == pytest.approx(3 * v[1])
    from voiceauth.config import Settings

    pol = EnrollmentPolicy.from_settings(Settings(enroll_target_speech_s=10, enroll_min_speech_s=12))
    assert pol.min_speech_s == 10  # never above the target


@pytest.mark.model
def test_real_speaker_poisoning_is_refused(engine, store: Store) -> None:  # type: ignore[no-untyped-def]
    """ECAPA on bundled FSDD samples: jackson's voice cannot be added to george's enrolment."""
    from voiceauth.audio.frontend import FrontEnd
    from voiceauth.config import Settings

    fe = FrontEnd(Settings())
    enroller = Enroller(store, CosineScorer(), COSINE_OPERATING_POINTS)
    enroller.register("acme", "george", consent_method="ivr", consent_text_version="v1", actor="test")

    def add(name: str):  # type: ignore[no-untyped-def]
        u = fe.from_file(SAMPLES / f"{name}.wav")
        return enroller.enroll("acme", "george", engine.embed(u.speech, u.sample_rate), u.quality, narrowband=True)

    assert add("george_a").accepted
    for other in ("jackson_a", "lucas_b", "yweweler_b"):
        r = add(other)
        assert not r.accepted and r.feedback == ("SPEAKER_MISMATCH",), other
    r = add("george_b")
    assert r.accepted and r.enrolled and r.utterances == 2
