"""What the front end hands to the embedding engine: speech with its context, and the full band when kept."""

from __future__ import annotations

import numpy as np

from voiceauth.audio.frontend import FrontEnd
from voiceauth.audio.stream import embedding_ranges
from voiceauth.config import Settings


def test_embedding_ranges_widen_edges_and_shorten_long_pauses() -> None:
    ranges = [(1000, 2000), (2500, 3000), (10_000, 11_000)]
    # edge 400: [600, ...]; the 500-sample pause is kept; the 7000-sample pause keeps 500 + 500 samples
    assert embedding_ranges(ranges, 11_200, edge=400, max_pause=1000) == [(600, 3500), (9500, 11_200)]
    assert embedding_ranges([], 5000, edge=400, max_pause=1000) == []
    assert embedding_ranges([(0, 100)], 100, edge=400, max_pause=0) == [(0, 100)]


def test_speech_is_whole_utterance_with_context(libri_16k: np.ndarray) -> None:
    """Leading / trailing silence beyond the edge and a long pause are cut; the speech itself is all kept."""
    silence = np.zeros(3 * 16000, dtype=np.float32)
    half = libri_16k.size // 2
    x = np.concatenate([silence, libri_16k[:half], silence, libri_16k[half:], silence])
    utt = FrontEnd(Settings(embed_edge_ms=500, embed_max_pause_ms=1000)).from_samples(x, 16000)
    net = utt.quality.net_speech_s
    assert net > 0.5 * libri_16k.size / 16000
    # at most: the utterance + 2 edges + one shortened pause
    assert net * 16000 <= utt.speech.size <= libri_16k.size + (0.5 + 0.5 + 1.0) * 16000
    assert utt.speech.size < x.size - 7 * 16000  # most of the 9 s of silence is gone
    assert utt.speech_wide is not None and utt.speech_wide.size == utt.speech.size


def _share_above_5k(x: np.ndarray) -> float:
    power = np.abs(np.fft.rfft(x)) ** 2
    return float(power[5 * x.size // 16 :].sum() / power.sum())


def test_full_band_kept_only_for_wideband_input_in_auto_mode(libri_16k: np.ndarray, digits_8k: np.ndarray) -> None:
    auto = FrontEnd(Settings(audio_band="auto"))
    wide = auto.from_samples(libri_16k, 16000)
    assert not wide.narrowband and wide.speech_wide is not None
    assert wide.speech_wide.size == wide.speech.size
    assert _share_above_5k(wide.speech_wide) > 100 * _share_above_5k(wide.speech)  # telephone band: ~nothing
    assert auto.from_samples(digits_8k, 8000).speech_wide is None  # 8 kHz input has no full band to keep
    assert FrontEnd(Settings(audio_band="telephone")).from_samples(libri_16k, 16000).speech_wide is None


def test_wide_mode_embeds_wideband_input_at_full_band_only(libri_16k: np.ndarray) -> None:
    utt = FrontEnd(Settings(audio_band="wide")).from_samples(libri_16k, 16000)
    assert utt.speech_wide is not None and np.array_equal(utt.speech_wide, utt.speech)
