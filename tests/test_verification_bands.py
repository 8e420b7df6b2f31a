"""Dual-band verification: which band is scored, what is recorded, adaptation of both bands (synthetic)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from enrollment.session import Enroller
from tests.helpers import q, voice
from voiceauth.embedding.base import FloatArray
from voiceauth.scoring.base import CosineScorer, Score
from voiceauth.store.models import AuditEvent
from voiceauth.store.repo import Store, StoredVoiceprint
from voiceauth.verification import Decision, VerificationPolicy, Verifier, scoring_band
from voiceauth.watchlist import COSINE_OPERATING_POINTS


class RecordingScorer(CosineScorer):
    """Cosine scoring that remembers the ``narrowband`` flag of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.bands: list[bool] = []

    def score(self, enrolled: FloatArray, probe: FloatArray, *, narrowband: bool, probe_speech_s: float) -> Score:
        self.bands.append(narrowband)
        return super().score(enrolled, probe, narrowband=narrowband, probe_speech_s=probe_speech_s)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(3)


@pytest.fixture
def bases(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Alice's telephone-band and full-band 'voices' (unrelated directions, so a test can tell which was scored)."""
    return {"tel": rng.standard_normal(192), "wide": rng.standard_normal(192), "other": rng.standard_normal(192)}


@pytest.fixture
def scorer() -> RecordingScorer:
    return RecordingScorer()


@pytest.fixture
def enrolled(store: Store, scorer: RecordingScorer, bases: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    """alice: enrolled from wideband audio (both bands); bob: over the phone (telephone band only)."""
    enroller = Enroller(store, scorer, COSINE_OPERATING_POINTS)
    for ref in ("alice", "bob"):
        enroller.register("acme", ref, consent_method="ivr", consent_text_version="v1", actor="test")
    for _ in range(2):
        wide = voice(bases["wide"], rng)
        assert enroller.enroll("acme", "alice", voice(bases["tel"], rng), q(5.0), narrowband=False, embedding_wide=wide)
        assert enroller.enroll("acme", "bob", voice(bases["tel"], rng), q(5.0), narrowband=True).accepted
    assert set(scorer.bands) == {True}  # enrolment checks (poisoning, watchlist) stay in the telephone band
    scorer.bands.clear()
    with store.transaction() as tx:
        tx.add_watchlist_entry(tx.tenant("acme").id, "fraud-1", voice(rng.standard_normal(192), rng), actor="sec")


def verifier(store: Store, scorer: RecordingScorer, **policy: object) -> Verifier:
    return Verifier(store, scorer, COSINE_OPERATING_POINTS, VerificationPolicy(**policy))  # type: ignore[arg-type]


def last_verify_details(store: Store) -> dict[str, object]:
    with store.transaction() as tx:
        ev = tx.session.query(AuditEvent).filter_by(action="verify").order_by(AuditEvent.seq.desc()).first()
        assert ev is not None
        return dict(json.loads(ev.details))


def test_scoring_band_is_full_only_when_both_sides_have_it() -> None:
    assert scoring_band(probe_wide=True, voiceprint_wide=True) == "full"
    assert scoring_band(probe_wide=True, voiceprint_wide=False) == "telephone"
    assert scoring_band(probe_wide=False, voiceprint_wide=True) == "telephone"
    assert scoring_band(probe_wide=False, voiceprint_wide=False) == "telephone"


@pytest.mark.usefixtures("enrolled")
def test_full_band_pair_is_scored_when_probe_and_voiceprint_have_it(
    store: Store, scorer: RecordingScorer, bases: dict[str, np.ndarray], rng: np.random.Generator
) -> None:
    v = verifier(store, scorer)
    # the telephone-band probe does not match alice, the full-band one does: ACCEPT proves the full band was scored
    res = v.verify(
        "acme",
        "alice",
        voice(bases["other"], rng),
        probe_wide=voice(bases["wide"], rng),
        net_speech_s=4.0,
        narrowband=False,
    )
    assert res.decision == Decision.ACCEPT and res.band == "full"
    assert scorer.bands == [True, False]  # watchlist search (telephone band), then the full-band pair
    assert last_verify_details(store)["band"] == "full"


@pytest.mark.usefixtures("enrolled")
def test_telephone_band_is_scored_otherwise(
    store: Store, scorer: RecordingScorer, bases: dict[str, np.ndarray], rng: np.random.Generator
) -> None:
    v = verifier(store, scorer)
    # a phone probe against a wideband voiceprint: telephone band
    res = v.verify("acme", "alice", voice(bases["tel"], rng), net_speech_s=4.0, narrowband=True)
    assert res.decision == Decision.ACCEPT and res.band == "telephone"
    assert last_verify_details(store)["band"] == "telephone"
    # a wideband probe against a phone voiceprint: telephone band, the full band is not used
    res = v.verify(
        "acme",
        "bob",
        voice(bases["tel"], rng),
        probe_wide=voice(bases["other"], rng),
        net_speech_s=4.0,
        narrowband=False,
    )
    assert res.decision == Decision.ACCEPT and res.band == "telephone"
    assert last_verify_details(store)["band"] == "telephone"
    assert scorer.bands == [True, True, True, True]  # each: the watchlist entry, then the telephone-band pair
    # not scored: no band
    res = v.verify("acme", "alice", None, net_speech_s=1.0, narrowband=False)
    assert res.decision == Decision.NOT_ENOUGH_SPEECH and res.band is None
    assert "band" not in last_verify_details(store)


@pytest.mark.usefixtures("enrolled")
def test_adaptation_moves_each_band_toward_the_probe_of_that_band(
    store: Store, scorer: RecordingScorer, bases: dict[str, np.ndarray], rng: np.random.Generator
) -> None:
    def vp() -> StoredVoiceprint:
        with store.transaction() as tx:
            stored = tx.voiceprint(tx.require_speaker(tx.tenant("acme").id, "alice"))
            assert stored is not None and stored.embedding_wide is not None
            return stored

    def mixed(current: np.ndarray, probe: np.ndarray) -> np.ndarray:
        m = 0.8 * current / np.linalg.norm(current) + 0.2 * probe / np.linalg.norm(probe)
        return m / np.linalg.norm(m)

    v = verifier(store, scorer, adapt=True, adapt_weight=0.2)
    before = vp()
    tel, wide = voice(bases["tel"], rng), voice(bases["wide"], rng)
    assert v.verify("acme", "alice", tel, probe_wide=wide, net_speech_s=4.0, narrowband=False).band == "full"
    after = vp()
    np.testing.assert_allclose(after.embedding, mixed(before.embedding, tel), atol=1e-6)
    assert after.embedding_wide is not None and before.embedding_wide is not None
    np.testing.assert_allclose(after.embedding_wide, mixed(before.embedding_wide, wide), atol=1e-6)
    # a phone probe adapts the telephone band only
    tel2 = voice(bases["tel"], rng)
    assert v.verify("acme", "alice", tel2, net_speech_s=4.0, narrowband=True).decision == Decision.ACCEPT
    later = vp()
    np.testing.assert_allclose(later.embedding, mixed(after.embedding, tel2), atol=1e-6)
    assert later.embedding_wide is not None
    np.testing.assert_array_equal(later.embedding_wide, after.embedding_wide)


def test_nothing_of_the_embeddings_is_logged(
    store: Store,
    scorer: RecordingScorer,
    bases: dict[str, np.ndarray],
    rng: np.random.Generator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    enroller = Enroller(store, scorer, COSINE_OPERATING_POINTS)
    enroller.register("acme", "alice", consent_method="ivr", consent_text_version="v1", actor="test")
    vectors = []
    for _ in range(2):
        tel, wide = voice(bases["tel"], rng), voice(bases["wide"], rng)
        vectors += [tel, wide]
        enroller.enroll("acme", "alice", tel, q(5.0), narrowband=False, embedding_wide=wide)
    tel, wide = voice(bases["tel"], rng), voice(bases["wide"], rng)
    vectors += [tel, wide]
    res = verifier(store, scorer).verify("acme", "alice", tel, probe_wide=wide, net_speech_s=4.0, narrowband=False)
    assert res.band == "full"
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "decision=ACCEPT band=full" in text  # decisions and the band are logged, never vectors or scores
    assert f"{res.score:.1f}" not in text and f"{res.raw_score:.4f}" not in text
    for vec in vectors:
        for x in vec[:4]:
            assert f"{x:.4f}" not in text and repr(float(x)) not in text
    with store.transaction() as tx:
        details = "\n".join(e.details for e in tx.session.query(AuditEvent))
    for vec in vectors:
        assert f"{vec[0]:.4f}" not in details
