"""Replay check: the same recording presented again is found; another take by the same speaker is not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from benchmarks.replay_check import compare_by_alignment
from voiceauth.antispoof.attacks import telephone_channel
from voiceauth.antispoof.replay import (
    DEFAULT_MAX_BER,
    Fingerprint,
    ReplayGuard,
    compare,
    find_replay,
    fingerprint,
)
from voiceauth.antispoof.windows import AntiSpoofError
from voiceauth.audio.resample import resample

SAMPLES = Path(__file__).resolve().parents[2] / "audio_samples"
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
DAY = 86_400.0


def _load(name: str) -> tuple[np.ndarray, int]:
    data, rate = sf.read(SAMPLES / name, dtype="float32")
    return data, int(rate)


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_replayed_recording_matches_and_another_take_does_not(speaker: str) -> None:
    a, ra = _load(f"{speaker}_a.wav")
    b, rb = _load(f"{speaker}_b.wav")
    original = fingerprint(a, ra)
    # the same recording, replayed: upsampled, through G.711 and back, quieter, trimmed at both ends
    replay = telephone_channel(resample(a, ra, 16_000))[1600:-2400] * 0.4
    assert compare(original, fingerprint(replay, 16_000)).ber <= 0.1
    # a different recording of the same speaker (other digits, other take) is far apart
    assert compare(original, fingerprint(b, rb)).ber > 0.3


def test_same_words_same_speaker_new_take_is_not_a_replay(fsdd_dir: Path) -> None:
    """The hard negative: identical digit string, same speaker, recorded again."""
    digits = [3, 1, 4, 1, 5, 9, 2]
    for speaker in SPEAKERS[:3]:
        take1 = np.concatenate([sf.read(fsdd_dir / f"{d}_{speaker}_{10}.wav", dtype="float32")[0] for d in digits])
        take2 = np.concatenate([sf.read(fsdd_dir / f"{d}_{speaker}_{20}.wav", dtype="float32")[0] for d in digits])
        m = compare(fingerprint(take1, 8000), fingerprint(take2, 8000))
        assert m.ber > DEFAULT_MAX_BER + 0.1, (speaker, m)


def test_find_replay_respects_the_retention_window() -> None:
    a, ra = _load("theo_a.wav")
    b, rb = _load("theo_b.wav")
    fa, fb = fingerprint(a, ra), fingerprint(b, rb)
    history = [(0.0, fb), (100.0, fa)]
    hit = find_replay(fingerprint(a * 0.8, ra), history, now=200.0, retention_s=DAY)
    assert hit is not None and hit.ber < 0.05
    assert find_replay(fingerprint(a, ra), history, now=100.0 + 2 * DAY, retention_s=DAY) is None


def test_guard_flags_the_second_presentation_only_for_that_speaker() -> None:
    a, ra = _load("lucas_a.wav")
    c, rc = _load("lucas_c.wav")
    guard = ReplayGuard(retention_s=DAY)
    assert guard.check_and_remember("tenant/lucas", fingerprint(a, ra), now=0.0) is None
    assert guard.check_and_remember("tenant/lucas", fingerprint(c, rc), now=10.0) is None
    assert guard.check_and_remember("tenant/other", fingerprint(a, ra), now=20.0) is None
    assert guard.check_and_remember("tenant/lucas", fingerprint(a, ra), now=30.0) is not None
    assert guard.check("tenant/lucas", fingerprint(a, ra), now=30.0 + 2 * DAY) is None


def test_fingerprint_round_trips_through_bytes() -> None:
    a, ra = _load("george_a.wav")
    fp = fingerprint(a, ra)
    back = Fingerprint.from_bytes(fp.to_bytes())
    assert np.array_equal(back.bits, fp.bits) and np.array_equal(back.active, fp.active)
    with pytest.raises(AntiSpoofError, match="not a voiceauth fingerprint"):
        Fingerprint.from_bytes(fp.to_bytes()[:-3])


def test_silence_and_short_audio_never_match() -> None:
    silence = fingerprint(np.zeros(16_000, dtype=np.float32), 16_000)
    assert compare(silence, silence).ber == 1.0  # no active frames: nothing to compare
    tiny = fingerprint(np.ones(100, dtype=np.float32), 8000)
    assert tiny.frames == 0 and compare(tiny, tiny).ber == 1.0


def test_bad_input_is_refused() -> None:
    with pytest.raises(AntiSpoofError, match="sample rate 0"):
        fingerprint(np.zeros(100, dtype=np.float32), 0)
    with pytest.raises(AntiSpoofError, match="retention"):
        ReplayGuard(retention_s=0)


def test_vectorised_compare_agrees_with_the_alignment_by_alignment_definition() -> None:
    takes = {s: [fingerprint(*_load(f"{s}_{t}.wav")) for t in ("a", "b")] for s in ("george", "theo")}
    a, ra = _load("lucas_a.wav")
    replay = fingerprint(telephone_channel(resample(a, ra, 16_000))[800:] * 0.5, 16_000)
    prints = [fp for pair in takes.values() for fp in pair] + [fingerprint(a, ra), replay]
    for x in prints:
        for y in prints:
            m = compare(x, y)
            assert (m.ber, m.offset, m.overlap) == compare_by_alignment(x, y)
    assert compare(prints[-2], replay).ber <= 0.1  # the replay is found at its offset
    # one probe against a history (the probe's spectra computed once): the same best match
    history = [(float(i), fp) for i, fp in enumerate(prints[:-1])]
    found = find_replay(replay, history, now=10.0, retention_s=100.0)
    assert found is not None and found == compare(replay, prints[-2])
