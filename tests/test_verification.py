"""Verification: every result state, lockout timing (injected clock), watchlist, adaptation, tenant thresholds."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from enrollment.session import Enroller
from voiceauth.audio.types import Quality
from voiceauth.errors import ConfigError
from voiceauth.liveness.store import issue_challenge
from voiceauth.scoring.base import CosineScorer
from voiceauth.store.db import create_db_engine
from voiceauth.store.models import AuditEvent, VerificationAttempt
from voiceauth.store.repo import Store
from voiceauth.store.testing import FakeClock, test_keyring
from voiceauth.verification import (
    ChallengeAnswer,
    Decision,
    LockoutPolicy,
    SpoofOutcome,
    VerificationPolicy,
    Verifier,
    precheck,
)
from voiceauth.watchlist import COSINE_OPERATING_POINTS

Q = Quality(net_speech_s=4.0, snr_db=30.0, clipping_ratio=0.0, level_dbfs=-20.0)


def voice(base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    v = base + 0.15 * rng.standard_normal(base.size)
    return (v / np.linalg.norm(v)).astype(np.float32)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    s = Store(create_db_engine(f"sqlite+pysqlite:///{tmp_path / 'v.db'}"), test_keyring(), clock=clock)
    yield s
    s.dispose()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


@pytest.fixture
def alice(store: Store, rng: np.random.Generator) -> np.ndarray:
    base = rng.standard_normal(192)
    e = Enroller(store, CosineScorer(), COSINE_OPERATING_POINTS)
    e.register("acme", "alice", consent_method="ivr", consent_text_version="v1", actor="test")
    for _ in range(3):
        e.enroll("acme", "alice", voice(base, rng), Q, narrowband=True)
    return base


def make_verifier(store: Store, **policy: object) -> Verifier:
    return Verifier(store, CosineScorer(), COSINE_OPERATING_POINTS, VerificationPolicy(**policy))  # type: ignore[arg-type]


def test_every_result_state_is_reached(
    store: Store, clock: FakeClock, alice: np.ndarray, rng: np.random.Generator
) -> None:
    v = make_verifier(store)
    mallory = rng.standard_normal(192)
    reached: dict[Decision, object] = {}

    def check(ref: str, probe: np.ndarray | None, speech: float = 4.0) -> Decision:
        r = v.verify("acme", ref, probe, net_speech_s=speech, narrowband=True, call_id="c", actor="ivr")
        reached[r.decision] = r
        return r.decision

    replayed = v.verify(
        "acme",
        "alice",
        voice(alice, rng),
        net_speech_s=4.0,
        narrowband=True,
        spoof_check=lambda history: SpoofOutcome(suspected=True, enforced=True, score=1.0, reason="replay"),
    )
    reached[replayed.decision] = replayed
    assert replayed.decision == Decision.SPOOF_SUSPECTED
    assert check("alice", voice(alice, rng)) == Decision.ACCEPT
    with store.transaction() as tx:  # a liveness challenge answered with other digits (voiceauth.liveness)
        ch = issue_challenge(tx, tx.tenant("acme").id, "alice", n_digits=4, ttl_s=60, actor="t")
    said = "".join(str((int(d) + 1) % 10) for d in ch.digits)
    failed = v.verify(
        "acme",
        "alice",
        voice(alice, rng),
        net_speech_s=4.0,
        narrowband=True,
        challenge=ChallengeAnswer(ch.challenge_id, said),
    )
    reached[failed.decision] = failed
    assert failed.decision == Decision.CHALLENGE_FAILED and failed.challenge_result == "wrong-digits"
    assert check("alice", voice(mallory, rng)) == Decision.REJECT
    assert check("alice", voice(alice, rng), speech=2.9) == Decision.NOT_ENOUGH_SPEECH
    assert check("alice", None, speech=0.0) == Decision.NOT_ENOUGH_SPEECH
    assert check("nobody", voice(alice, rng)) == Decision.NOT_ENROLLED
    Enroller(store, CosineScorer(), COSINE_OPERATING_POINTS).register(
        "acme", "carol", consent_method="ivr", consent_text_version="v1", actor="t"
    )
    assert check("carol", voice(alice, rng)) == Decision.NOT_ENROLLED  # registered, nothing enrolled
    for _ in range(5):
        check("alice", voice(mallory, rng))
    assert check("alice", voice(alice, rng)) == Decision.LOCKED_OUT
    clock.advance(31)
    assert check("alice", voice(alice, rng)) == Decision.ACCEPT
    clock.advance(days=3 * 365 + 1)
    assert check("alice", voice(alice, rng)) == Decision.EXPIRED
    with store.transaction() as tx:
        tx.opt_out(tx.require_speaker(tx.tenant("acme").id, "alice"), actor="agent")
    assert check("alice", voice(alice, rng)) == Decision.OPTED_OUT
    assert set(reached) == set(Decision)
    accept = reached[Decision.ACCEPT]
    assert accept.score is not None and accept.raw_score is not None and accept.threshold == 80.0  # type: ignore[attr-defined]
    assert store.count_rows(VerificationAttempt) == 17
    assert store.verify_audit_chain().ok


def test_lockout_follows_nist_800_63b(
    store: Store, clock: FakeClock, alice: np.ndarray, rng: np.random.Generator
) -> None:
    v = make_verifier(store, lockout=LockoutPolicy(failures=5, base_s=30, disable_failures=8))
    mallory = rng.standard_normal(192)

    def attempt(base: np.ndarray) -> tuple[Decision, dt.datetime | None]:
        r = v.verify("acme", "alice", voice(base, rng), net_speech_s=4.0, narrowband=True)
        return r.decision, r.locked_until

    assert [attempt(mallory)[0] for _ in range(5)] == [Decision.REJECT] * 5
    d, until = attempt(alice)  # the genuine caller too: locked for 30 s, not scored
    assert d == Decision.LOCKED_OUT and until == clock.now + dt.timedelta(seconds=30)
    clock.advance(29.9)
    assert attempt(alice)[0] == Decision.LOCKED_OUT
    clock.advance(0.2)
    assert attempt(mallory)[0] == Decision.REJECT  # 6th consecutive failure: 60 s
    clock.advance(59)
    assert attempt(alice)[0] == Decision.LOCKED_OUT
    clock.advance(1.5)
    assert attempt(mallory)[0] == Decision.REJECT  # 7th: 120 s
    clock.advance(119)
    assert attempt(alice)[0] == Decision.LOCKED_OUT
    clock.advance(1.5)
    assert attempt(alice)[0] == Decision.ACCEPT  # success resets the count
    assert [attempt(mallory)[0] for _ in range(5)] == [Decision.REJECT] * 5
    assert attempt(alice)[0] == Decision.LOCKED_OUT
    clock.advance(31)
    for _ in range(3):  # 6th, 7th, 8th consecutive failures, each after its lockout
        assert attempt(mallory)[0] == Decision.REJECT
        clock.advance(10_000)
    clock.advance(days=30)
    assert attempt(alice)[0] == Decision.LOCKED_OUT  # hard cap: voice disabled until staff re-enable it
    with store.transaction() as tx:
        spk = tx.require_speaker(tx.tenant("acme").id, "alice")
        assert spk.voice_disabled
        tx.set_voice_disabled(spk, False, actor="security")
    assert attempt(alice)[0] == Decision.ACCEPT
    with store.engine.connect() as c:
        actions = [a for (a,) in c.exec_driver_sql("SELECT action FROM audit_events")]
    assert "speaker.voice_disabled" in actions and "speaker.voice_enabled" in actions
    assert store.count_rows(AuditEvent) == len(actions)


def test_lockout_policy_is_pure() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    p = LockoutPolicy(failures=5, base_s=30, disable_failures=20)
    assert p.after_failure(4, now) == (None, False)
    assert p.after_failure(5, now) == (now + dt.timedelta(seconds=30), False)
    assert p.after_failure(7, now) == (now + dt.timedelta(seconds=120), False)
    assert p.after_failure(20, now) == (None, True)
    d = precheck(
        registered=True,
        status="active",
        voice_disabled=False,
        locked_until=now,
        has_voiceprint=True,
        expires_at=None,
        net_speech_s=5,
        min_speech_s=3,
        now=now,
    )
    assert d is None  # a lock that ends now no longer applies


def test_watchlist_hit_is_flagged_on_verification(store: Store, alice: np.ndarray, rng: np.random.Generator) -> None:
    fraud = rng.standard_normal(192)
    with store.transaction() as tx:
        entry = tx.add_watchlist_entry(tx.tenant("acme").id, "known fraudster", voice(fraud, rng), actor="sec")
    v = make_verifier(store)
    r = v.verify("acme", "alice", voice(fraud, rng), net_speech_s=4.0, narrowband=True)
    assert r.decision == Decision.REJECT and r.watchlist_hit is not None and r.watchlist_hit.entry_id == entry
    ok = v.verify("acme", "alice", voice(alice, rng), net_speech_s=4.0, narrowband=True)
    assert ok.decision == Decision.ACCEPT and ok.watchlist_hit is None
    hit = v.verify("acme", "nobody", voice(fraud, rng), net_speech_s=4.0, narrowband=True)
    assert hit.decision == Decision.NOT_ENROLLED and hit.watchlist_hit is not None  # searched even then
    with store.transaction() as tx:
        a = tx.session.get(VerificationAttempt, r.attempt_id)
        assert a is not None and a.watchlist_entry_id == entry


def test_adaptation_is_off_by_default_and_blends_when_on(
    store: Store, alice: np.ndarray, rng: np.random.Generator
) -> None:
    def vp() -> np.ndarray:
        with store.transaction() as tx:
            stored = tx.voiceprint(tx.require_speaker(tx.tenant("acme").id, "alice"))
            assert stored is not None
            return stored.embedding

    before = vp()
    assert make_verifier(store).verify(
        "acme", "alice", voice(alice, rng), net_speech_s=4, narrowband=True
    ).decision == (Decision.ACCEPT)
    np.testing.assert_array_equal(vp(), before)
    probe = voice(alice, rng)
    make_verifier(store, adapt=True, adapt_weight=0.2).verify("acme", "alice", probe, net_speech_s=4, narrowband=True)
    after = vp()
    expected = 0.8 * before + 0.2 * probe
    np.testing.assert_allclose(after, expected / np.linalg.norm(expected), atol=1e-6)


def test_tenant_threshold_override_and_unknown_operating_point(
    store: Store, alice: np.ndarray, rng: np.random.Generator
) -> None:
    probe = voice(alice, rng)
    assert make_verifier(store).verify("acme", "alice", probe, net_speech_s=4, narrowband=True).decision == (
        Decision.ACCEPT
    )
    with store.transaction() as tx:
        tx.set_threshold(tx.tenant("acme").id, "high_security", 99.99, actor="security")
    r = make_verifier(store).verify("acme", "alice", probe, net_speech_s=4, narrowband=True)
    assert r.decision == Decision.REJECT and r.threshold == 99.99
    with store.transaction() as tx:
        tx.set_operating_point(tx.tenant("acme").id, "convenience", actor="security")
    r = make_verifier(store).verify("acme", "alice", probe, net_speech_s=4, narrowband=True)
    assert r.decision == Decision.ACCEPT and r.operating_point == "convenience" and r.threshold == 72.5
    with store.transaction() as tx:
        tx.set_operating_point(tx.tenant("acme").id, None, actor="security")
    with pytest.raises(ConfigError, match="strictest"):
        make_verifier(store, operating_point="strictest").verify(
            "acme", "alice", probe, net_speech_s=4, narrowband=True
        )
