"""The pipeline end to end: bytes -> front end -> embedding -> decision -> store (fake and real engine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.helpers import MemoEngine
from voiceauth.config import Settings
from voiceauth.embedding.fake import FakeEngine
from voiceauth.errors import AudioError
from voiceauth.pipeline import Pipeline, default_scoring
from voiceauth.scoring.base import CosineScorer, Scorer
from voiceauth.store.models import VerificationAttempt
from voiceauth.store.testing import FakeClock, make_utterance
from voiceauth.verification import Decision
from voiceauth.watchlist import COSINE_OPERATING_POINTS

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "audio_samples"


def settings_for(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, data_dir=tmp_path / "data")


def wav(name: str) -> bytes:
    return (SAMPLES / f"{name}.wav").read_bytes()


def test_fake_engine_round_trip_through_bytes(tmp_path: Path) -> None:
    engine = FakeEngine()
    pipe = Pipeline.from_settings(settings_for(tmp_path), engine=engine, scorer=CosineScorer(), clock=FakeClock())
    pipe.register("acme", "george", consent_method="ivr", consent_text_version="v1", actor="test")
    r1 = pipe.enroll("acme", "george", wav("george_a"), actor="test")
    r2 = pipe.enroll("acme", "george", wav("george_a"), actor="test")
    assert r1.accepted and r2.accepted and r2.enrolled and r2.progress > r1.progress > 0
    v = pipe.verify("acme", "george", wav("george_a"), call_id="call-1", actor="ivr")
    assert v.decision == Decision.ACCEPT and v.score is not None and v.score > 99
    assert (tmp_path / "data" / "voiceauth.db").exists()
    assert engine.calls == 3
    with pytest.raises(AudioError):
        pipe.verify("acme", "george", b"RIFF\x00\x00not audio at all", call_id="call-2")
    assert pipe.store.count_rows(VerificationAttempt) == 1  # undecodable audio never reaches the store


def test_short_or_refused_audio_is_never_embedded(tmp_path: Path) -> None:
    engine = FakeEngine()
    pipe = Pipeline.from_settings(settings_for(tmp_path), engine=engine, scorer=CosineScorer())
    pipe.register("acme", "george", consent_method="ivr", consent_text_version="v1", actor="test")
    x, sr = sf.read(SAMPLES / "george_a.wav", dtype="float32")
    for _ in range(2):
        assert pipe.enroll("acme", "george", make_utterance(x, sr)).accepted
    assert engine.calls == 2
    r = pipe.enroll("acme", "george", make_utterance(x, sr, codes=("TOO_NOISY",)))
    assert not r.accepted and r.feedback == ("TOO_NOISY",) and r.utterances == 2
    v = pipe.verify("acme", "george", make_utterance(x[: sr * 3 // 2], sr))  # 1.5 s < 2 s minimum
    assert v.decision == Decision.NOT_ENOUGH_SPEECH and v.score is None
    assert engine.calls == 2
    assert pipe.verify("acme", "george", make_utterance(x, sr)).decision == Decision.ACCEPT
    assert engine.calls == 3


@pytest.fixture(scope="module")
def memo_engine(engine):  # type: ignore[no-untyped-def]
    return MemoEngine(engine)


@pytest.fixture(params=["cosine", "production"])
def scoring(request: pytest.FixtureRequest) -> tuple[Scorer, dict[str, float]]:
    if request.param == "cosine":
        return CosineScorer(), dict(COSINE_OPERATING_POINTS)
    return default_scoring(Settings())  # the shipped production scorer (verified against its manifest)


@pytest.mark.model
def test_real_genuine_accept_and_impostor_reject(
    memo_engine: MemoEngine,
    tmp_path: Path,
    scoring: tuple[Scorer, dict[str, float]],
) -> None:
    scorer, points = scoring
    pipe = Pipeline.from_settings(
        settings_for(tmp_path), engine=memo_engine, scorer=scorer, operating_points=points, clock=FakeClock()
    )
    pipe.register("acme", "george", consent_method="ivr", consent_text_version="v1", actor="test")
    for name in ("george_a", "george_b"):
        r = pipe.enroll("acme", "george", wav(name))
        assert r.accepted, (name, r.feedback)
    assert r.enrolled
    genuine = pipe.verify("acme", "george", wav("george_c"))
    assert genuine.decision == Decision.ACCEPT, genuine
    for impostor in ("jackson_c", "lucas_c", "yweweler_b"):
        res = pipe.verify("acme", "george", wav(impostor))
        assert res.decision == Decision.REJECT, (impostor, res)
        assert res.score is not None and genuine.score is not None and res.score < genuine.score
    assert np.isfinite(genuine.raw_score or np.nan)
