"""Replay through the pipeline: the same recording of an accepted attempt, played again, is SPOOF_SUSPECTED."""

from __future__ import annotations

from pathlib import Path

from voiceauth.config import Settings
from voiceauth.embedding.fake import FakeEngine
from voiceauth.pipeline import Pipeline
from voiceauth.scoring.base import CosineScorer
from voiceauth.store.models import ReplayFingerprint, VerificationAttempt
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
