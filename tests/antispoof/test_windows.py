"""Windowing and pooling of the countermeasure (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from voiceauth.antispoof.windows import (
    WINDOW_SAMPLES,
    AntiSpoofError,
    pool_scores,
    tile_to,
    trim_silence,
    window_starts,
    windows,
)


def test_short_audio_is_tiled_to_one_window() -> None:
    x = np.arange(1000, dtype=np.float32)
    w = windows(x)
    assert w.shape == (1, WINDOW_SAMPLES)
    assert np.array_equal(w[0, :1000], x) and np.array_equal(w[0, 1000:2000], x)
    assert np.array_equal(tile_to(x, 2500)[2000:], x[:500])


def test_windows_cover_the_whole_utterance_with_the_tail_aligned() -> None:
    n = 3 * WINDOW_SAMPLES + 123
    starts = window_starts(n, WINDOW_SAMPLES, WINDOW_SAMPLES // 2, max_windows=100)
    assert starts[0] == 0 and starts[-1] == n - WINDOW_SAMPLES
    assert all(b - a <= WINDOW_SAMPLES // 2 for a, b in zip(starts, starts[1:], strict=False))
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    w = windows(x, hop=WINDOW_SAMPLES // 2, max_windows=100)
    assert w.shape == (len(starts), WINDOW_SAMPLES)
    assert np.array_equal(w[-1], x[-WINDOW_SAMPLES:])


def test_max_windows_spreads_the_windows_over_the_utterance() -> None:
    n = 20 * WINDOW_SAMPLES
    starts = window_starts(n, WINDOW_SAMPLES, WINDOW_SAMPLES // 2, max_windows=4)
    assert len(starts) == 4
    assert starts[0] == 0 and starts[-1] == n - WINDOW_SAMPLES


def test_trim_silence_cuts_leading_and_trailing_non_speech() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(16_000) / 16_000
    speech = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    faint = rng.normal(0, 3e-4, 8000).astype(np.float32)  # ~ -70 dBFS
    out = trim_silence(np.concatenate([faint, speech, faint]))
    assert abs(out.size - speech.size) <= 320  # within one 20 ms frame
    assert np.array_equal(trim_silence(np.zeros(4000, dtype=np.float32)), np.zeros(4000, dtype=np.float32))


def test_pooling() -> None:
    s = [1.0, -3.0, 5.0]
    assert pool_scores(s, "mean") == pytest.approx(1.0)
    assert pool_scores(s, "max") == 5.0
    assert pool_scores(s, "min") == -3.0
    assert pool_scores(s, "median") == 1.0
    with pytest.raises(AntiSpoofError, match="pooling 'sum' is not supported"):
        pool_scores(s, "sum")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("audio", "match"),
    [
        (np.zeros(0, dtype=np.float32), "empty audio"),
        (np.array([0.0, np.nan], dtype=np.float32), "NaN or Inf"),
    ],
)
def test_bad_audio_is_refused(audio: np.ndarray, match: str) -> None:
    with pytest.raises(AntiSpoofError, match=match):
        windows(audio)


def test_bad_geometry_is_refused() -> None:
    with pytest.raises(AntiSpoofError, match="must all be positive"):
        window_starts(100_000, WINDOW_SAMPLES, 0, 4)
