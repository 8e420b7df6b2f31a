"""Silero VAD: the batched evaluation equals Silero's own model, and net speech survives padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voiceauth.audio.frontend import FrontEnd
from voiceauth.audio.resample import resample
from voiceauth.audio.types import Utterance
from voiceauth.audio.vad import VadParams, VadStream, load_vad_model, speech_segments


def _silero_per_window(x: np.ndarray, rate: int) -> np.ndarray:
    """Silero's documented use: the stateful model called on one window at a time."""
    model = load_vad_model()
    model.reset_states()
    win = 512 if rate == 16000 else 256
    x = np.concatenate([x, np.zeros((-x.size) % win, dtype=np.float32)])
    with torch.inference_mode():
        return np.array(
            [float(model(torch.from_numpy(x[i : i + win]).unsqueeze(0), rate)) for i in range(0, x.size, win)]
        )


def test_model_loads_once_from_the_wheel() -> None:
    assert load_vad_model() is load_vad_model()


@pytest.mark.parametrize("rate", [8000, 16000])
def test_batched_and_chunked_vad_equal_silero(libri_16k: np.ndarray, rate: int) -> None:
    x = libri_16k[16000:48000] if rate == 16000 else resample(libri_16k[16000:48000], 16000, 8000)
    ref = _silero_per_window(x, rate)
    whole = VadStream(rate)
    got = np.concatenate([whole.feed(x), whole.flush()])
    np.testing.assert_allclose(got, ref, atol=1e-4)
    framed = VadStream(rate)
    step = rate // 50  # 20 ms frames
    got20 = np.concatenate([framed.feed(x[i : i + step]) for i in range(0, x.size, step)] + [framed.flush()])
    np.testing.assert_allclose(got20, ref, atol=1e-4)
    assert ref.max() > 0.9 and ref.min() < 0.1  # real speech with pauses


def test_speech_segments_rules() -> None:
    p = VadParams(threshold=0.5, min_speech_ms=100, min_silence_ms=100, speech_pad_ms=0)
    probs = [0.0] * 3 + [0.9] * 10 + [0.1] * 2 + [0.9] * 10 + [0.1] * 6 + [0.9] * 2 + [0.0] * 5 + [0.9] * 4
    # a 2-window pause does not split; 2 windows (64 ms) of speech are too short; a trailing segment stays
    assert speech_segments(probs, p) == [(3, 25), (38, 42)]
    assert speech_segments([0.9] * 2, p, final=False) == [(0, 2)]  # may grow: kept while streaming
    assert speech_segments([0.9] * 2, p, final=True) == []
    assert speech_segments([0.4] * 50, p) == []  # hysteresis: below threshold never starts speech


@pytest.mark.parametrize("which", ["librispeech", "fsdd"])
def test_net_speech_survives_padding_with_silence_and_low_noise(
    frontend: FrontEnd,
    which: str,
    libri_16k: np.ndarray,
    libri_ref: Utterance,
    digits_8k: np.ndarray,
    digits_ref: Utterance,
) -> None:
    x, rate, ref = (libri_16k, 16000, libri_ref) if which == "librispeech" else (digits_8k, 8000, digits_ref)
    silence = np.zeros(5 * rate, dtype=np.float32)
    padded = np.concatenate([silence, x, silence])
    noise = 10 ** (-55 / 20) * np.random.default_rng(3).standard_normal(padded.size)  # -55 dBFS hiss
    utt = frontend.from_samples((padded + noise).astype(np.float32), rate)
    assert ref.quality.net_speech_s > 2.5
    assert abs(utt.quality.net_speech_s - ref.quality.net_speech_s) <= 0.10 * ref.quality.net_speech_s
    assert utt.duration_s == pytest.approx(ref.duration_s + 10, abs=1e-3)
    first, last = utt.segments[0][0], utt.segments[-1][1]
    assert 4.8 <= first and last <= utt.duration_s - 4.8  # speech was found where it is, not in the padding
