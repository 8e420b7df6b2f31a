"""Streaming: 20 ms telephone frames give what the whole file gives, with speech-so-far along the way."""

from __future__ import annotations

import numpy as np
import pytest

from voiceauth.audio.codecs import l16_encode, mulaw_encode
from voiceauth.audio.frontend import FrontEnd
from voiceauth.audio.resample import resample
from voiceauth.audio.stream import StreamingFrontEnd
from voiceauth.config import Settings
from voiceauth.errors import InvalidSamples, UnsupportedFormat


def test_mulaw_frames_equal_the_whole_upload(frontend: FrontEnd, digits_8k: np.ndarray) -> None:
    payload = mulaw_encode(np.concatenate([np.zeros(8000, np.float32), digits_8k, np.zeros(8000, np.float32)]))
    whole = frontend.from_bytes(payload, fmt="mulaw", sample_rate=8000)
    stream = frontend.stream(8000, "mulaw")
    seen: list[float] = []
    for i in range(0, len(payload), 160):  # 20 ms frames
        stream.feed(payload[i : i + 160])
        seen.append(stream.net_speech_s)
    assert stream.narrowband
    final = stream.finish()
    assert seen[40] == 0.0  # the first 0.8 s is silence
    assert all(b >= a for a, b in zip(seen, seen[1:], strict=False)) or max(seen) >= final.quality.net_speech_s
    assert seen[-1] == pytest.approx(final.quality.net_speech_s, abs=0.1)
    assert final.quality == whole.quality
    assert final.segments == whole.segments
    np.testing.assert_allclose(final.speech, whole.speech, atol=1e-5)
    assert stream.trailing_silence_s > 0.8 and not stream.in_speech


def test_l16_frames_split_mid_sample_at_48k(frontend: FrontEnd, libri_16k: np.ndarray) -> None:
    x = resample(libri_16k, 16000, 48000)
    payload = l16_encode(x)
    whole = frontend.from_bytes(payload, fmt="l16", sample_rate=48000)
    stream = StreamingFrontEnd(Settings(), sample_rate=48000, fmt="l16")
    for i in range(0, len(payload), 1923):  # odd sizes split samples across chunks
        stream.feed(payload[i : i + 1923])
    final = stream.finish()
    assert final.quality == whole.quality
    np.testing.assert_allclose(final.speech, whole.speech, atol=1e-5)
    assert not final.narrowband


def test_float_stream_speech_so_far(frontend: FrontEnd, digits_8k: np.ndarray) -> None:
    stream = frontend.stream(8000)
    half = digits_8k.size // 2
    stream.feed(digits_8k[:half])
    early = stream.speech()
    assert early.size > 0 and stream.in_speech
    stream.feed(digits_8k[half:])
    assert stream.finish().speech.size > early.size
    assert stream.duration_s == pytest.approx(digits_8k.size / 8000)


def test_stream_input_errors(frontend: FrontEnd) -> None:
    with pytest.raises(UnsupportedFormat, match="takes bytes"):
        frontend.stream(8000, "mulaw").feed(np.zeros(160, np.float32))
    with pytest.raises(UnsupportedFormat, match="float samples"):
        frontend.stream(8000).feed(b"\x00" * 160)
    with pytest.raises(UnsupportedFormat, match="11025"):
        frontend.stream(11025)
    with pytest.raises(InvalidSamples):
        frontend.stream(16000).feed(np.array([0.0, np.nan], np.float32))
