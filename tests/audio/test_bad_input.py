"""Bad input gets a typed AudioError naming what was wrong and what is accepted; poor audio gets codes."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from tests.audio.conftest import to_bytes
from voiceauth.audio.codecs import l16_encode, mulaw_encode
from voiceauth.audio.frontend import FrontEnd, require_speech
from voiceauth.config import Settings
from voiceauth.errors import (
    AudioDecodeError,
    AudioError,
    AudioLimitExceeded,
    InvalidSamples,
    NoSpeech,
    UnsupportedFormat,
)

RANDOM = np.random.default_rng(7).integers(0, 256, 8192, dtype=np.uint8).tobytes()


def wav_header(
    *, tag: int = 1, channels: int = 1, rate: int = 8000, bits: int = 16, data_size: int, riff_size: int = 36
) -> bytes:
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + (b"data" + struct.pack("<I", data_size))
    )


def _tone(freq: float | tuple[float, ...], seconds: float, rate: int = 8000, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    freqs = (freq,) if isinstance(freq, float | int) else freq
    return (amp * sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)).astype(np.float32)


@pytest.mark.parametrize(
    ("data", "error", "says"),
    [
        (b"", AudioDecodeError, "empty"),
        (b"RIFF\x24\x00\x00\x00WAV", AudioDecodeError, "too short"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00", AudioDecodeError, "truncated"),
        (RANDOM[:4096], AudioDecodeError, "unrecognised"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(500), UnsupportedFormat, "MP3"),
        (b"\xff\xfb\x90\x64" + bytes(500), UnsupportedFormat, "MP3"),
        (b"OggS\x00\x02" + bytes(500), UnsupportedFormat, "Ogg"),
        (wav_header(data_size=100_000) + bytes(100), AudioDecodeError, "truncated"),
        (wav_header(data_size=0), AudioDecodeError, "no audio samples"),
        (wav_header(rate=11025, data_size=4) + bytes(4), UnsupportedFormat, "11025 Hz is not supported"),
        (wav_header(tag=0x55, bits=0, data_size=4) + bytes(4), UnsupportedFormat, "MP3"),
        (wav_header(tag=0x11, bits=4, data_size=4) + bytes(4), UnsupportedFormat, "IMA ADPCM"),
        (wav_header(channels=0, data_size=4) + bytes(4), UnsupportedFormat, "0 channels"),
        (wav_header(channels=999, data_size=4) + bytes(4), UnsupportedFormat, "at most 8"),
        (b"fLaC\x00\x00\x00\x22" + bytes(10), AudioDecodeError, "FLAC header is truncated"),
        (b"fLaC\x00\x00\x00\x22" + RANDOM[:300], AudioError, "."),  # any typed error
    ],
    ids=[
        "empty", "short-header", "truncated-fmt", "random", "mp3-id3", "mp3-frame", "ogg", "truncated-data",
        "no-samples", "rate", "wav-mp3", "wav-adpcm", "zero-channels", "absurd-channels", "flac-short", "flac-corrupt",
    ],
)  # fmt: skip
def test_bad_bytes_raise_typed_errors(frontend: FrontEnd, data: bytes, error: type[AudioError], says: str) -> None:
    with pytest.raises(error, match=says) as info:
        frontend.from_bytes(data)
    assert isinstance(info.value, AudioError)


def test_errors_say_what_is_accepted(frontend: FrontEnd) -> None:
    with pytest.raises(AudioDecodeError) as info:
        frontend.from_bytes(b"hello world, not audio at all")
    assert "WAV" in str(info.value) and "FLAC" in str(info.value) and "mulaw" in str(info.value)
    with pytest.raises(UnsupportedFormat, match="8000, 16000, 44100 or 48000"):
        frontend.from_bytes(bytes(160), fmt="mulaw", sample_rate=22050)


def test_truncated_real_files(frontend: FrontEnd, digits_8k: np.ndarray) -> None:
    wav = to_bytes(digits_8k, 8000)
    with pytest.raises(AudioDecodeError, match="truncated"):
        frontend.from_bytes(wav[: len(wav) // 2])
    flac = to_bytes(digits_8k, 8000, "FLAC")
    with pytest.raises(AudioDecodeError, match="FLAC"):
        frontend.from_bytes(flac[: len(flac) // 2])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_samples(frontend: FrontEnd, digits_8k: np.ndarray, bad: float) -> None:
    x = digits_8k.copy()
    x[1000] = bad
    with pytest.raises(InvalidSamples, match="NaN or infinite"):
        frontend.from_bytes(to_bytes(x, 8000, "WAV", "FLOAT"))
    with pytest.raises(InvalidSamples):
        frontend.from_samples(x, 8000)


def test_header_claiming_an_hour_is_over_the_limit(frontend: FrontEnd) -> None:
    hour = 3600 * 8000 * 2
    with pytest.raises(AudioLimitExceeded, match="3600.0 s of audio; the limit is 120 s"):
        frontend.from_bytes(wav_header(data_size=hour) + bytes(1000))


def test_header_claiming_4gb_is_refused_before_reading(frontend: FrontEnd) -> None:
    with pytest.raises(AudioLimitExceeded, match="limit"):
        frontend.from_bytes(wav_header(data_size=0xFFFFFFFF, riff_size=0xFFFFFFFF) + bytes(64))


def test_huge_file_is_refused_from_its_size(frontend: FrontEnd, tmp_path: Path) -> None:
    path = tmp_path / "huge.wav"
    with path.open("wb") as fh:  # sparse: 4 GB claimed by the file system, nothing on disk
        fh.write(wav_header(data_size=0xFFFFFFF0))
        fh.truncate(4 * 1024**3)
    with pytest.raises(AudioLimitExceeded, match="bytes; the limit is"):
        frontend.from_file(path)


def test_long_audio_over_the_duration_limit(digits_8k: np.ndarray) -> None:
    fe = FrontEnd(Settings(max_audio_duration_s=2.0))
    with pytest.raises(AudioLimitExceeded, match="limit is 2 s"):
        fe.from_bytes(to_bytes(digits_8k, 8000))
    with pytest.raises(AudioLimitExceeded):
        fe.from_bytes(mulaw_encode(digits_8k), fmt="mulaw", sample_rate=8000)
    with pytest.raises(AudioLimitExceeded):
        fe.from_samples(digits_8k, 8000)
    stream = fe.stream(8000, "mulaw")
    with pytest.raises(AudioLimitExceeded):
        for i in range(0, digits_8k.size, 160):
            stream.feed(mulaw_encode(digits_8k[i : i + 160]))


def test_upload_over_the_byte_limit(digits_8k: np.ndarray) -> None:
    fe = FrontEnd(Settings(max_upload_bytes=4096))
    with pytest.raises(AudioLimitExceeded, match="the limit is 4096 bytes"):
        fe.from_bytes(to_bytes(digits_8k, 8000))


def test_raw_stream_mistakes(frontend: FrontEnd) -> None:
    with pytest.raises(UnsupportedFormat, match="needs a sample rate"):
        frontend.from_bytes(bytes(320), fmt="l16")
    with pytest.raises(UnsupportedFormat, match="'gsm' is not supported"):
        frontend.from_bytes(bytes(320), fmt="gsm", sample_rate=8000)
    with pytest.raises(AudioDecodeError, match="whole number"):
        frontend.from_bytes(bytes(321), fmt="l16", sample_rate=8000)
    with pytest.raises(UnsupportedFormat, match="channel 2 requested"):
        frontend.from_bytes(bytes(320), fmt="l16", sample_rate=8000, channels=2, channel=2)
    with pytest.raises(AudioDecodeError, match="not a FLAC"):
        frontend.from_bytes(wav_header(data_size=2) + bytes(2), fmt="flac")


@pytest.mark.parametrize(
    "name",
    ["silence", "low-noise", "tone-440", "tone-1004", "dtmf-digits", "busy-tone", "square-wave"],
)
def test_silence_tones_and_dtmf_are_no_speech(frontend: FrontEnd, name: str) -> None:
    rate = 8000
    rng = np.random.default_rng(1)
    if name == "silence":
        x = np.zeros(3 * rate, dtype=np.float32)
    elif name == "low-noise":
        x = (0.003 * rng.standard_normal(3 * rate)).astype(np.float32)
    elif name == "tone-440":
        x = _tone(440.0, 3.0)
    elif name == "tone-1004":  # the telephone test tone
        x = _tone(1004.0, 3.0)
    elif name == "busy-tone":
        x = _tone((480.0, 620.0), 3.0) * (np.arange(3 * rate) % rate < rate // 2)
    elif name == "square-wave":
        x = (0.2 * np.sign(_tone(150.0, 3.0))).astype(np.float32)
    else:  # "1 2 3 4 5 6 7 8 9 0 # *" keyed at 10 digits/s
        keys = [(697, 1209), (697, 1336), (697, 1477), (770, 1209), (770, 1336), (770, 1477),
                (852, 1209), (852, 1336), (852, 1477), (941, 1336), (941, 1477), (941, 1209)]  # fmt: skip
        gap = np.zeros(int(0.05 * rate), dtype=np.float32)
        x = np.concatenate([np.concatenate([_tone(k, 0.1), gap]) for k in keys * 2])
    for utt in (
        frontend.from_samples(x, rate),
        frontend.from_bytes(mulaw_encode(x), fmt="mulaw", sample_rate=rate),
        frontend.from_bytes(l16_encode(FrontEnd_resample(x)), fmt="l16", sample_rate=16000),
    ):
        assert utt.quality.codes == ("NO_SPEECH",), (name, utt.quality)
        assert utt.quality.net_speech_s == 0.0 and utt.speech.size == 0
        with pytest.raises(NoSpeech, match="no speech"):
            require_speech(utt)


def FrontEnd_resample(x: np.ndarray) -> np.ndarray:  # noqa: N802 - local helper
    from voiceauth.audio.resample import resample

    return resample(x, 8000, 16000)
