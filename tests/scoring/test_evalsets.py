"""The reader split, piece cutting and telephone channel used for the cohort and the accuracy benchmark."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voiceauth.errors import ConfigError
from voiceauth.scoring.evalsets import (
    cut_pieces,
    fsdd_digit_strings,
    load_librispeech,
    split_readers,
    telephone_channel,
)


def test_split_is_disjoint_deterministic_and_balanced() -> None:
    readers = [str(i) for i in range(100)]
    sex = {r: ("F" if int(r) % 3 else "M") for r in readers}
    a, b = split_readers(readers, sex)
    assert set(a).isdisjoint(b) and set(a) | set(b) == set(readers)
    assert (a, b) == split_readers(list(reversed(readers)), sex)
    females_a = sum(sex[r] == "F" for r in a)
    females_b = sum(sex[r] == "F" for r in b)
    assert abs(females_a - females_b) <= 1


def test_split_of_the_shared_readers(librispeech_dir: Path) -> None:
    files, sex = load_librispeech(librispeech_dir)
    cohort, evaluation = split_readers(list(files), sex)
    assert len(files) == 251 and abs(len(cohort) - len(evaluation)) <= 1
    assert set(cohort).isdisjoint(evaluation)


def test_cut_pieces_lengths() -> None:
    sr = 16000
    pieces = cut_pieces(np.zeros(int(12.5 * sr), np.float32), sr)
    assert len(pieces) == 4 and all(3.0 <= p.size / sr < 6.0 for p in pieces)
    assert len(cut_pieces(np.zeros(int(5.9 * sr), np.float32), sr)) == 1
    assert cut_pieces(np.zeros(int(2.9 * sr), np.float32), sr) == []
    with pytest.raises(ConfigError):
        cut_pieces(np.zeros(10, np.float32), sr, min_s=4.0, max_s=6.0)


def test_telephone_channel_is_8k_g711() -> None:
    sr = 16000
    t = np.arange(sr) / sr
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)
    for law in ("g711_mulaw", "g711_alaw"):
        y, rate = telephone_channel(x, sr, law)
        assert rate == 8000 and y.dtype == np.float32 and y.size == sr // 2
        spectrum = np.abs(np.fft.rfft(y))
        freqs = np.fft.rfftfreq(y.size, 1 / rate)
        assert spectrum[np.argmin(np.abs(freqs - 440))] > 10 * spectrum[freqs > 3800].max()  # 6 kHz tone gone
        assert len(np.unique(y)) <= 256  # one byte per sample
    same, rate = telephone_channel(x, sr, "wideband")
    assert rate == 16000 and np.array_equal(same, x)
    with pytest.raises(ConfigError, match="channel"):
        telephone_channel(x, sr, "gsm")


def test_fsdd_strings_use_each_recording_once(fsdd_dir: Path) -> None:
    pieces = fsdd_digit_strings(fsdd_dir, per_speaker=3)
    assert len(pieces) == 18 and len({p.speaker for p in pieces}) == 6
    assert all(p.sample_rate == 8000 and 1.5 < p.seconds < 6.0 for p in pieces)
    assert len({p.key for p in pieces}) == 18
