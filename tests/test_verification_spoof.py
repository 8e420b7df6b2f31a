"""SPOOF_SUSPECTED in the verifier: enforced verdicts fail like REJECT (lockout), monitor mode only audits,
fingerprints are stored on every scored attempt and handed back as history."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from sqlalchemy import select

from enrollment.session import Enroller
from tests.helpers import voice
from voiceauth.audio.types import Quality
from voiceauth.scoring.base import CosineScorer
from voiceauth.store.models import AuditEvent, ReplayFingerprint, VerificationAttempt
from voiceauth.store.repo import Store
from voiceauth.verification import (
    SPOOF_THRESHOLD,
    Decision,
    SpoofCheck,
    SpoofOutcome,
    VerificationPolicy,
    VerificationResult,
    Verifier,
)
from voiceauth.watchlist import COSINE_OPERATING_POINTS

Q = Quality(net_speech_s=4.0, snr_db=30.0, clipping_ratio=0.0, level_dbfs=-20.0)


@pytest.fixture
def alice(store: Store) -> np.ndarray:
    rng = np.random.default_rng(3)
    base = rng.standard_normal(192)
    e = Enroller(store, CosineScorer(), COSINE_OPERATING_POINTS)
    e.register("acme", "alice", consent_method="ivr", consent_text_version="v1", actor="test")
    for _ in range(3):
        e.enroll("acme", "alice", voice(base, rng), Q, narrowband=True)
    return base


def test_replay_verdict_fails_like_reject_and_locks_out(store: Store, alice: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    v = Verifier(store, CosineScorer(), COSINE_OPERATING_POINTS, VerificationPolicy())
    seen: list[list[bytes]] = []

    def check(history: list[tuple[dt.datetime, bytes]]) -> SpoofOutcome:
        seen.append([fp for _, fp in history])
        replay = b"rec-1" in seen[-1]  # a stand-in fingerprint match: the 2nd use of the same recording
        return SpoofOutcome(
            suspected=replay, enforced=True, score=0.9 if replay else 0.1, reason="replay", fingerprint=b"rec-1"
        )

    first = v.verify("acme", "alice", voice(alice, rng), net_speech_s=4.0, narrowband=True, spoof_check=check)
    assert first.decision == Decision.ACCEPT
    decisions = [
        v.verify("acme", "alice", voice(alice, rng), net_speech_s=4.0, narrowband=True, spoof_check=check).decision
        for _ in range(5)
    ]
    assert decisions == [Decision.SPOOF_SUSPECTED] * 5
    assert seen[0] == [] and seen[1] == [b"rec-1"]
    # five consecutive failures: a genuine probe is now locked out
    assert v.verify("acme", "alice", voice(alice, rng), net_speech_s=4.0, narrowband=True).decision == (
        Decision.LOCKED_OUT
    )
    assert store.count_rows(ReplayFingerprint) == 6
    with store.transaction() as tx:
        attempts = list(tx.session.execute(select(VerificationAttempt).order_by(VerificationAttempt.id)).scalars())
        audits = [
            json.loads(e.details)
            for e in tx.session.execute(select(AuditEvent).where(AuditEvent.action == "verify")).scalars()
        ]
    assert attempts[1].spoof_reason == "replay" and attempts[1].spoof_score == pytest.approx(0.9)
    assert attempts[0].spoof_reason is None and attempts[0].spoof_score == pytest.approx(0.1)
    assert any(a.get("spoof_reason") == "replay" and a.get("spoof_score") == 0.9 for a in audits)


def test_monitor_mode_audits_but_keeps_the_decision(store: Store, alice: np.ndarray) -> None:
    rng = np.random.default_rng(6)
    v = Verifier(store, CosineScorer(), COSINE_OPERATING_POINTS, VerificationPolicy())
    r = v.verify(
        "acme",
        "alice",
        voice(alice, rng),
        net_speech_s=4.0,
        narrowband=True,
        spoof_check=lambda h: SpoofOutcome(suspected=True, enforced=False, score=0.8, reason="synthetic"),
    )
    assert r.decision == Decision.ACCEPT
    with store.transaction() as tx:
        attempt = tx.session.execute(select(VerificationAttempt)).scalar_one()
    assert attempt.spoof_reason == "synthetic" and attempt.spoof_score == pytest.approx(0.8)


def test_tenant_spoof_threshold_rejudges_the_aasist_score_but_never_a_replay(store: Store, alice: np.ndarray) -> None:
    rng = np.random.default_rng(7)
    v = Verifier(store, CosineScorer(), COSINE_OPERATING_POINTS, VerificationPolicy())

    def aasist(score: float, reason: str | None = None) -> SpoofCheck:
        suspected = reason is not None or score >= 0.0
        why = reason or ("synthetic" if suspected else None)
        return lambda h: SpoofOutcome(suspected, enforced=True, score=score, reason=why, threshold=0.0)

    def run(check: SpoofCheck) -> VerificationResult:
        return v.verify("acme", "alice", voice(alice, rng), net_speech_s=4.0, narrowband=True, spoof_check=check)

    assert run(aasist(1.5)).decision == Decision.SPOOF_SUSPECTED  # the service default, 0.0
    with store.transaction() as tx:
        tx.set_threshold(tx.tenant("acme").id, SPOOF_THRESHOLD, 2.0, actor="test")
    lenient = run(aasist(1.5))
    assert lenient.decision == Decision.ACCEPT and lenient.spoof_threshold == 2.0 and lenient.spoof_reason is None
    assert run(aasist(2.5)).decision == Decision.SPOOF_SUSPECTED
    replay = run(aasist(-3.0, reason="replay"))  # the tenant threshold is about AASIST only
    assert replay.decision == Decision.SPOOF_SUSPECTED and replay.spoof_reason == "replay"
    with store.transaction() as tx:
        tx.set_threshold(tx.tenant("acme").id, SPOOF_THRESHOLD, -5.0, actor="test")
    strict = run(aasist(-4.0))
    assert strict.decision == Decision.SPOOF_SUSPECTED and strict.spoof_score == -4.0
    assert strict.spoof_threshold == -5.0 and strict.spoof_reason == "synthetic"
