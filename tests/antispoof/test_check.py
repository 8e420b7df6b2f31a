"""assess(): one verdict per attempt from the replay check and the countermeasure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voiceauth.antispoof.check import assess
from voiceauth.antispoof.countermeasure import Countermeasure
from voiceauth.audio.resample import resample

SAMPLES = Path(__file__).resolve().parents[2] / "audio_samples"


def _sample(name: str) -> np.ndarray:
    data, rate = sf.read(SAMPLES / name, dtype="float32")
    return resample(data, rate, 16_000)


def test_replay_of_an_accepted_attempt_is_suspected_without_the_model() -> None:
    first = assess(_sample("george_a.wav"), countermeasure=None, now=100.0)
    assert not first.suspected and first.score is None
    history = [(100.0, first.fingerprint)]
    again = assess(_sample("george_a.wav") * 0.7, countermeasure=None, history=history, now=200.0)
    assert again.suspected and again.reason == "replay" and again.replay_ber is not None
    other_take = assess(_sample("george_b.wav"), countermeasure=None, history=history, now=200.0)
    assert not other_take.suspected
    late = assess(_sample("george_a.wav"), countermeasure=None, history=history, now=1e6, retention_s=3600.0)
    assert not late.suspected
    off = assess(_sample("george_a.wav"), countermeasure=None, history=history, now=200.0, replay_check=False)
    assert not off.suspected


def test_tenant_threshold_decides_the_synthetic_verdict(
    countermeasure: Countermeasure, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(countermeasure, "score_windows", lambda batch: np.full(batch.shape[0], 1.0))
    x = _sample("theo_a.wav")
    assert assess(x, countermeasure=countermeasure, threshold=0.5).reason == "synthetic"
    lenient = assess(x, countermeasure=countermeasure, threshold=2.0)
    assert not lenient.suspected and lenient.score == pytest.approx(1.0) and lenient.threshold == 2.0
