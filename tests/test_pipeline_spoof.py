"""Anti-spoofing through the pipeline: a replayed recording of an accepted attempt is SPOOF_SUSPECTED; in monitor
mode synthetic speech is scored and audited while the voice alone decides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.fetch import ensure_model
from models.registry import AASIST
from voiceauth.antispoof.attacks import SENTENCES, espeak_available, espeak_synthesize
from voiceauth.config import Settings
from voiceauth.embedding.fake import FakeEngine
from voiceauth.pipeline import Pipeline
from voiceauth.scoring.base import CosineScorer
from voiceauth.store.models import AuditEvent, ReplayFingerprint, VerificationAttempt
from voiceauth.store.testing import FakeClock
from voiceauth.verification import Decision

SAMPLES = Path(__file__).resolve().parents[1] / "audio_samples"


def test_replayed_accepted_recording_is_refused_and_erasure_removes_fingerprints(tmp_path: Path) -> None:
    pipe = Pipeline.from_settings(
        Settings(home=tmp_path, data_dir=tmp_path / "data"),
        engine=FakeEngine(),
        scorer=CosineScorer(),
        clock=FakeClock(),
    )
    assert pipe.replay_check  # on by default
    pipe.register("acme", "george", consent_method="ivr", consent_text_version="v1", actor="test")
    for name in ("george_a", "george_b"):
        assert pipe.enroll("acme", "george", (SAMPLES / f"{name}.wav").read_bytes(), actor="test").accepted
    probe = (SAMPLES / "george_c.wav").read_bytes()
    assert pipe.verify("acme", "george", probe, call_id="c1").decision == Decision.ACCEPT
    replayed = pipe.verify("acme", "george", probe, call_id="c2")
    assert replayed.decision == Decision.SPOOF_SUSPECTED
    with pipe.store.transaction() as tx:
        spk = tx.require_speaker(tx.tenant("acme").id, "george")
        assert tx.lockout(spk).consecutive_failures == 1  # counted like a REJECT
        rows = [a.spoof_reason for a in tx.session.query(VerificationAttempt).order_by(VerificationAttempt.id)]
    assert rows == [None, "replay"]
    assert pipe.store.count_rows(ReplayFingerprint) == 2
    with pipe.store.transaction() as tx:
        tx.erase(tx.require_speaker(tx.tenant("acme").id, "george"), actor="test")
    assert pipe.store.count_rows(ReplayFingerprint) == 0


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (Debian package espeak-ng)")
def test_monitor_mode_scores_synthetic_speech_without_changing_the_decision(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        data_dir=tmp_path / "data",
        antispoof_mode="monitor",
        antispoof_model="aasist",
        antispoof_max_windows=1,
        antispoof_model_dir=ensure_model(Settings(), AASIST),
        replay_check=False,
    )
    pipe = Pipeline.from_settings(settings, engine=FakeEngine(), scorer=CosineScorer(), clock=FakeClock())
    assert pipe.countermeasure is not None and pipe.antispoof_mode == "monitor"
    pipe.register("acme", "george", consent_method="ivr", consent_text_version="v1", actor="test")
    for name in ("george_a", "george_b"):
        assert pipe.enroll("acme", "george", (SAMPLES / f"{name}.wav").read_bytes(), actor="test").accepted
    tts = espeak_synthesize(SENTENCES[3], "en-gb+f4", 140)
    res = pipe.verify("acme", "george", pipe.frontend.from_samples(tts, 16_000))  # type: ignore[union-attr]
    assert res.decision in (Decision.ACCEPT, Decision.REJECT)  # the voice decides, never the spoof score
    assert res.decision == (
        Decision.ACCEPT if res.score is not None and res.score >= res.threshold else Decision.REJECT
    )
    # monitor mode answers before AASIST has scored: the score lands on the attempt and in the audit afterwards
    assert res.spoof_score is None and res.attempt_id is not None
    assert pipe.settle_spoof(timeout_s=120.0)
    with pipe.store.transaction() as tx:
        attempt = tx.session.query(VerificationAttempt).one()
        audit = json.loads(tx.session.query(AuditEvent).filter(AuditEvent.action == "verify.spoof").one().details)
    assert attempt.spoof_score is not None and attempt.spoof_score >= 0.0 and attempt.spoof_reason == "synthetic"
    assert attempt.decision == res.decision.value  # the late score never changes the decision
    assert audit["spoof_suspected"] is True and audit["spoof_enforced"] is False
    assert audit["attempt"] == res.attempt_id
