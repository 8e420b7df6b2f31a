"""Anti-spoofing on call streams: windows scored as speech arrives (bounded per call, batched across calls);
enforce mode decides SPOOF_SUSPECTED on synthetic speech, monitor mode records the score without waiting for it."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from voiceauth.antispoof.attacks import SENTENCES, espeak_available, espeak_synthesize
from voiceauth.antispoof.countermeasure import Countermeasure
from voiceauth.antispoof.stream import CallSpoof, WindowBatcher
from voiceauth.audio.codecs import mulaw_encode
from voiceauth.audio.resample import resample
from voiceauth.audio.stream import StreamingFrontEnd
from voiceauth.config import Settings
from voiceauth.embedding.base import FloatArray
from voiceauth.pipeline import Pipeline
from voiceauth.scoring.base import CosineScorer
from voiceauth.store.models import AuditEvent, VerificationAttempt
from voiceauth.streaming import StreamDecision, StreamingPolicy, StreamingVerifier
from voiceauth.verification import Decision
from voiceauth.watchlist import COSINE_OPERATING_POINTS

TENANT = "acme"
E0 = np.eye(192, dtype=np.float32)[0]


class StubEngine:
    """Always the enrolled speaker's vector: the voice is a match, only the spoof verdict can refuse."""

    dim, precision, device = 192, "fp32", "cpu"

    def embed(self, wav: FloatArray, sample_rate: int, *, telephone: bool = False) -> FloatArray:
        return E0

    def embed_batch(self, wavs: list[FloatArray], sample_rate: int, *, telephone: bool = False) -> FloatArray:
        return np.stack([E0 for _ in wavs])


@pytest.fixture(scope="module")
def tts_call() -> bytes:
    """~4.5 s of espeak-ng speech as an 8 kHz mu-law call."""
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (Debian package espeak-ng)")
    x = np.concatenate([espeak_synthesize(SENTENCES[i], "en-us+m3", 150) for i in (0, 2)])
    return mulaw_encode(np.clip(resample(x, 16_000, 8_000), -1, 1))


@pytest.fixture()
def pipe(tmp_path: Path) -> Pipeline:
    p = Pipeline.from_settings(
        Settings(home=tmp_path, scoring_backend="cosine"),
        engine=StubEngine(),
        scorer=CosineScorer(),
        operating_points=COSINE_OPERATING_POINTS,
    )
    p.register(TENANT, "george", consent_method="test", consent_text_version="v1", actor="test")
    with p.store.transaction() as tx:
        spk = tx.require_speaker(tx.tenant(TENANT).id, "george")
        tx.save_voiceprint(spk, E0, net_speech_s=20.0, n_utterances=3, narrowband=True, retention=dt.timedelta(days=30))
    return p


def _call(pipe: Pipeline, call: bytes, spoof: CallSpoof) -> StreamDecision:
    sv = StreamingVerifier(
        frontend=StreamingFrontEnd(Settings(), sample_rate=8000, fmt="mulaw"),
        engine=StubEngine(),
        verifier=pipe.verifier,
        tenant=TENANT,
        speaker_ref="george",
        call_id="call-1",
        policy=StreamingPolicy(min_speech_s=3.0, max_speech_s=8.0),
        spoof=spoof,
    )
    for i in range(0, len(call), 800):  # 100 ms frames
        if (d := sv.feed(call[i : i + 800])) is not None:
            return d
    return sv.finish()


def _audits(pipe: Pipeline) -> list[tuple[str, dict[str, object]]]:
    with pipe.store.transaction() as tx:
        rows = tx.session.execute(select(AuditEvent).where(AuditEvent.action.like("verify%"))).scalars()
        return [(e.action, json.loads(e.details)) for e in rows]


def test_enforce_mode_stream_decides_spoof_suspected(
    pipe: Pipeline, countermeasure: Countermeasure, tts_call: bytes
) -> None:
    batcher = WindowBatcher(countermeasure)
    try:
        d = _call(pipe, tts_call, CallSpoof(batcher, mode="enforce", max_windows=2))
    finally:
        batcher.close()
    assert d.decision == Decision.SPOOF_SUSPECTED and d.public == "SPOOF_SUSPECTED"
    assert d.result.spoof_score is not None and d.result.spoof_score >= 0.0 and d.result.spoof_reason == "synthetic"
    assert batcher.windows_scored == 1  # decided early at ~3 s of speech: the speech so far, tiled to one window
    [(action, audit)] = _audits(pipe)
    assert action == "verify" and audit["spoof_enforced"] is True and audit["decision"] == "SPOOF_SUSPECTED"


def test_monitor_mode_stream_does_not_wait_and_records_the_score_late(
    pipe: Pipeline, countermeasure: Countermeasure, tts_call: bytes
) -> None:
    batcher = WindowBatcher(countermeasure)
    with countermeasure._lock:  # the worker is busy: the score cannot be ready when the voice decides
        d = _call(pipe, tts_call, CallSpoof(batcher, mode="monitor"))
        assert d.decision == Decision.ACCEPT and d.result.spoof_score is None
    batcher.close()  # the worker scores the window, the late score is recorded
    with pipe.store.transaction() as tx:
        attempt = tx.session.execute(select(VerificationAttempt)).scalar_one()
        assert attempt.decision == "ACCEPT" and attempt.spoof_score is not None and attempt.spoof_score >= 0.0
        assert attempt.spoof_reason == "synthetic"
    actions = _audits(pipe)
    assert [a for a, _ in actions] == ["verify", "verify.spoof"]
    late = actions[1][1]
    assert late["spoof_enforced"] is False and late["spoof_suspected"] is True and late["attempt"] == attempt.id


def test_windows_are_bounded_per_call_and_batched_across_calls(
    countermeasure: Countermeasure, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    gate = threading.Event()

    def fake(batch: np.ndarray) -> np.ndarray:
        gate.wait(10)  # the worker is busy until every call has submitted its windows
        seen.append(batch.shape[0])
        return batch[:, 0].astype(np.float64)  # the window's first sample: identifies the window

    monkeypatch.setattr(countermeasure, "score_windows", fake)
    batcher = WindowBatcher(countermeasure, max_batch=4)
    w, hop = countermeasure.window, countermeasure.hop
    speech = np.arange(w + 3 * hop, dtype=np.float32)
    calls = [CallSpoof(batcher, mode="enforce", max_windows=2) for _ in range(3)]
    for c in calls:
        for n in range(0, speech.size + 1, 1600):
            c.observe(n, lambda n=n: speech[:n])  # type: ignore[misc]
        assert c.windows_submitted == 2  # bounded: never more than max_windows
    gate.set()
    try:
        results = [c.result(speech) for c in calls]
    finally:
        batcher.close()
    assert all(r is not None for r in results)
    assert results[0] is not None and results[0].score == 0.0  # min of the windows starting at 0 and at hop
    assert batcher.windows_scored == 6 and sum(seen) == 6 and max(seen) > 1  # batched
