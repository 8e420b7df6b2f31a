"""Telephone audio end to end with the real ECAPA model, and ``voiceauth inspect``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.audio.conftest import LIBRI_UTTERANCE, to_bytes
from voiceauth.audio.codecs import mulaw_encode
from voiceauth.audio.frontend import FrontEnd
from voiceauth.audio.resample import resample
from voiceauth.config import Settings
from voiceauth.embedding.base import cosine


@pytest.mark.model
def test_mulaw_telephone_copy_embeds_like_the_wideband_original(
    engine, frontend: FrontEnd, librispeech_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    import soundfile as sf

    path = librispeech_dir / LIBRI_UTTERANCE
    x, rate = sf.read(path, dtype="float32")
    wide = frontend.from_file(path)  # the 16 kHz wideband file, default (telephone band-matching) front end
    phone = frontend.from_bytes(mulaw_encode(resample(x, rate, 8000)), fmt="mulaw", sample_rate=8000)
    assert not wide.narrowband and phone.narrowband
    e_phone = engine.embed(phone.speech, 16000)
    score = cosine(engine.embed(wide.speech, 16000), e_phone)
    assert score >= 0.9, score
    # the trade-off, shown: keeping the full band ("wide") scores the same pair lower across the channels
    unmatched = FrontEnd(Settings(audio_band="wide")).from_file(path)
    assert cosine(engine.embed(unmatched.speech, 16000), e_phone) < score - 0.05


def _app():  # type: ignore[no-untyped-def]
    # imported late: the CLI pulls in SpeechBrain, whose lazy modules warn when hypothesis scans sys.modules
    from voiceauth.cli import app

    return app


def test_inspect_json(tmp_path: Path, digits_8k: np.ndarray) -> None:
    path = tmp_path / "caller.wav"
    stereo = np.stack([digits_8k * 0, digits_8k], axis=1)
    path.write_bytes(to_bytes(stereo, 8000, "WAV", "ULAW"))
    result = CliRunner().invoke(_app(), ["inspect", str(path), "--channel", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["format"] == "wav mulaw 8000 Hz 2 ch (channel 1)"
    assert data["duration_s"] == pytest.approx(digits_8k.size / 8000, abs=1e-3)
    assert data["net_speech_s"] > 2.5 and data["codes"] == ["OK"] and data["narrowband"] is True
    for key in ("snr_db", "clipping_ratio", "level_dbfs", "segments"):
        assert key in data
    human = CliRunner().invoke(_app(), ["inspect", str(path), "--channel", "1"])
    assert human.exit_code == 0 and "net speech" in human.output


def test_inspect_bad_file_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "song.mp3"
    path.write_bytes(b"ID3\x04" + bytes(100))
    result = CliRunner().invoke(_app(), ["inspect", str(path), "--json"])
    assert result.exit_code == 2
    assert "MP3 audio is not supported" in result.output
