"""Short answers on a call, with the shipped settings and the real model: a clear genuine caller is accepted at the
first evaluation, after about 2 s of speech (not 3 s), and an impostor's short answer is not accepted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import FSDD
from voiceauth.audio.codecs import mulaw_encode
from voiceauth.audio.stream import StreamingFrontEnd
from voiceauth.config import Settings
from voiceauth.pipeline import Pipeline, default_scoring
from voiceauth.streaming import StreamingPolicy, StreamingVerifier
from voiceauth.verification import Decision

pytestmark = pytest.mark.model

TENANT = "acme"


def _digits(speaker: str, digits: str, take: int) -> np.ndarray:
    """A digit string from FSDD takes, at a phone network's level (-23 dBFS RMS)."""
    x = np.concatenate([sf.read(FSDD / f"{d}_{speaker}_{take}.wav", dtype="float32")[0] for d in digits])
    return np.clip(x * (10 ** (-23 / 20) / float(np.sqrt(np.mean(x**2)))), -1, 1).astype(np.float32)


def _stream(pipe: Pipeline, settings: Settings, claimed: str, audio: np.ndarray) -> tuple[Decision, float, int]:
    sv = StreamingVerifier(
        frontend=StreamingFrontEnd(settings, sample_rate=8000, fmt="mulaw"),
        engine=pipe.engine,
        verifier=pipe.verifier,
        tenant=TENANT,
        speaker_ref=claimed,
        policy=StreamingPolicy.from_settings(settings),
    )
    data, decided = mulaw_encode(audio), None
    for i in range(0, len(data), 800):  # 100 ms blocks
        decided = sv.feed(data[i : i + 800])
        if decided is not None:
            break
    decided = decided or sv.finish()
    return decided.decision, float(decided.speech_seconds), int(sv.evaluations)


@pytest.mark.skipif(not FSDD.is_dir(), reason="needs ../shared/data/fsdd")
def test_a_clear_genuine_short_answer_is_accepted_at_two_seconds(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(home=tmp_path, antispoof_mode="off", replay_check=False, enroll_min_speech_s=6.0)
    assert settings.verify_min_speech_s == 2.0  # the shipped first evaluation
    scorer, points = default_scoring(settings)
    pipe = Pipeline.from_settings(settings, engine=engine, scorer=scorer, operating_points=points)
    assert pipe.frontend is not None
    pipe.register(TENANT, "lucas", consent_method="test", consent_text_version="v1", actor="test")
    enrol = np.concatenate([_digits("lucas", "0123456789", take) for take in (0, 1)])
    assert pipe.enroll(TENANT, "lucas", pipe.frontend.from_samples(enrol, 8000), actor="test").enrolled

    decision, speech_s, evaluations = _stream(pipe, settings, "lucas", _digits("lucas", "31415926", 30))
    assert decision == Decision.ACCEPT
    assert evaluations == 1 and 2.0 <= speech_s < 2.5  # decided at the first evaluation, well before 3 s

    decision, _, _ = _stream(pipe, settings, "lucas", _digits("george", "31415926", 30))
    assert decision != Decision.ACCEPT
