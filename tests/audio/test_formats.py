"""Every accepted format, made in the test from real speech (FSDD 8 kHz digits, LibriSpeech 16 kHz)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.audio.conftest import to_bytes
from voiceauth.audio.codecs import alaw_encode, l16_encode, mulaw_encode
from voiceauth.audio.frontend import FrontEnd
from voiceauth.audio.resample import resample
from voiceauth.audio.types import Utterance


def _close_to(utt: Utterance, ref: Utterance, tol: float = 0.1) -> None:
    assert utt.quality.codes == ("OK",), utt.quality
    assert abs(utt.quality.net_speech_s - ref.quality.net_speech_s) <= tol * ref.quality.net_speech_s
    assert utt.sample_rate == 16000 and utt.speech.dtype == np.float32
    # what is embedded: the speech with its context (edges, short pauses), never less than the speech itself
    assert utt.quality.net_speech_s * 16000 - 16 <= utt.speech.size <= utt.duration_s * 16000 + 16


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW"])
def test_wav_subtypes_8k(frontend: FrontEnd, digits_8k: np.ndarray, digits_ref: Utterance, subtype: str) -> None:
    utt = frontend.from_bytes(to_bytes(digits_8k, 8000, "WAV", subtype))
    _close_to(utt, digits_ref)
    assert utt.narrowband and utt.source_sample_rate == 8000
    codec = {"PCM_U8": "pcm8", "ULAW": "mulaw", "ALAW": "alaw", "FLOAT": "float32", "DOUBLE": "float64"}
    assert utt.source_format == f"wav {codec.get(subtype, subtype.lower().replace('_', ''))} 8000 Hz mono"
    assert utt.duration_s == pytest.approx(digits_8k.size / 8000, abs=1e-3)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_wav_extensible_header(frontend: FrontEnd, libri_16k: np.ndarray, libri_ref: Utterance, subtype: str) -> None:
    _close_to(frontend.from_bytes(to_bytes(libri_16k, 16000, "WAVEX", subtype)), libri_ref)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24"])
def test_flac(frontend: FrontEnd, libri_16k: np.ndarray, libri_ref: Utterance, subtype: str) -> None:
    utt = frontend.from_bytes(to_bytes(libri_16k, 16000, "FLAC", subtype))
    _close_to(utt, libri_ref)
    assert utt.source_format.startswith("flac") and not utt.narrowband


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("fmt", ["mulaw", "alaw", "l16"])
def test_raw_streams_at_every_rate(
    frontend: FrontEnd, libri_16k: np.ndarray, libri_ref: Utterance, fmt: str, rate: int
) -> None:
    x = resample(libri_16k, 16000, rate)
    encode = {"mulaw": mulaw_encode, "alaw": alaw_encode, "l16": l16_encode}[fmt]
    utt = frontend.from_bytes(encode(x), fmt=fmt, sample_rate=rate)
    _close_to(utt, libri_ref)
    assert utt.source_format == f"raw {fmt} {rate} Hz mono"
    assert utt.narrowband == (fmt != "l16" or rate == 8000)


@pytest.mark.parametrize("rate", [44100, 48000])
def test_wav_at_high_rates(frontend: FrontEnd, libri_16k: np.ndarray, libri_ref: Utterance, rate: int) -> None:
    _close_to(frontend.from_bytes(to_bytes(resample(libri_16k, 16000, rate), rate)), libri_ref)


def test_stereo_uses_the_chosen_channel(frontend: FrontEnd, digits_8k: np.ndarray, digits_ref: Utterance) -> None:
    """A call recording: caller on the right channel, the left one silent."""
    stereo = np.stack([np.zeros_like(digits_8k), digits_8k], axis=1)
    data = to_bytes(stereo, 8000)
    caller = frontend.from_bytes(data, channel=1)
    _close_to(caller, digits_ref)
    assert caller.source_format == "wav pcm16 8000 Hz 2 ch (channel 1)"
    np.testing.assert_allclose(caller.speech, digits_ref.speech, atol=1e-4)
    assert frontend.from_bytes(data, channel=0).quality.codes == ("NO_SPEECH",)
    interleaved = np.stack([np.zeros_like(digits_8k), digits_8k], axis=1).reshape(-1)
    raw = frontend.from_bytes(mulaw_encode(interleaved), fmt="ulaw", sample_rate=8000, channels=2, channel=1)
    _close_to(raw, digits_ref)


def test_file_and_samples_agree(frontend: FrontEnd, tmp_path, libri_16k: np.ndarray, libri_ref: Utterance) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "a.flac"
    path.write_bytes(to_bytes(libri_16k, 16000, "FLAC", "PCM_24"))
    utt = frontend.from_file(path)
    np.testing.assert_allclose(utt.speech, libri_ref.speech, atol=1e-4)
    assert utt.segments == libri_ref.segments
