"""Fuzzing the decoder: random and mutated bytes end in a result or a typed AudioError, nothing else.

Bounded: about 1,200 decoder inputs (a few seconds here, well under 30 s on 2 cores).
"""

from __future__ import annotations

import io
import struct

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voiceauth.audio.decode import DecodeLimits, decode_bytes
from voiceauth.errors import AudioError

LIMITS = DecodeLimits(max_bytes=1_000_000, max_duration_s=30.0, max_channels=8)
RNG = np.random.default_rng(11)
SPEECHY = (0.3 * np.sin(np.arange(4000) / 7.0) * RNG.uniform(0.5, 1, 4000)).astype(np.float32)


def _file(fmt: str, subtype: str, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.tile(SPEECHY[:, None], (1, channels)), 8000, format=fmt, subtype=subtype)
    return buf.getvalue()


SEEDS = [
    _file("WAV", "PCM_16"), _file("WAV", "ULAW"), _file("WAV", "FLOAT", 2), _file("WAVEX", "PCM_24"),
    _file("FLAC", "PCM_16"), _file("WAV", "PCM_U8"),
]  # fmt: skip


def _decode(data: bytes, **kw: object) -> None:
    try:
        out = decode_bytes(data, limits=LIMITS, **kw)  # type: ignore[arg-type]
    except AudioError:
        return
    assert out.samples.dtype == np.float32 and out.samples.ndim == 1 and out.samples.size > 0
    assert np.all(np.isfinite(out.samples)) and np.all(np.abs(out.samples) <= 1.0)
    assert out.samples.size <= LIMITS.max_duration_s * out.sample_rate


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


@FAST
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    _decode(data)


@FAST
@given(st.binary(max_size=64).map(lambda b: b"RIFF" + b[:4].ljust(4, b"\0") + b"WAVEfmt " + b[4:]))
def test_random_wav_headers(data: bytes) -> None:
    _decode(data)


@FAST
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, 100_000),
    st.sampled_from([None, 0, 1, 7]),
)
def test_mutated_real_files(seed: bytes, edits: list[tuple[int, int]], cut: int, channel: int | None) -> None:
    data = bytearray(seed)
    for pos, value in edits:  # header region mutations
        data[pos % len(data)] = value
    _decode(bytes(data[: max(1, len(data) - cut % len(data))]), channel=channel)


@FAST
@given(
    st.binary(max_size=1024),
    st.sampled_from(["mulaw", "alaw", "l16", "pcmu", "bogus"]),
    st.sampled_from([8000, 16000, 44100, 48000, 11025, 0, -8000]),
    st.integers(0, 12),
)
def test_raw_streams(data: bytes, fmt: str, rate: int, channels: int) -> None:
    _decode(data, fmt=fmt, sample_rate=rate, channels=channels)


def test_claimed_sizes_never_allocate() -> None:
    for size in (0, 1, 0x7FFFFFFF, 0xFFFFFFFF):
        for channels in (1, 2, 65535):
            fmt = struct.pack("<HHIIHH", 1, channels, 8000, 16000 * channels, (2 * channels) & 0xFFFF, 16)
            data = b"RIFF\0\0\0\0WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", size)
            _decode(data + bytes(16))
