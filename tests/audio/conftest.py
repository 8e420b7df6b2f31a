"""Fixtures for the audio front-end tests: real speech from the shared corpora, WAV/FLAC writers."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import fsdd_string
from voiceauth.audio.frontend import FrontEnd
from voiceauth.audio.types import Utterance
from voiceauth.config import Settings

LIBRI_UTTERANCE = "1034-121119-0000.flac"  # 7.9 s, about 4 s of speech with long pauses


def to_bytes(samples: np.ndarray, rate: int, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    """Encode samples ([n] or [n, ch]) with libsndfile, as a client would."""
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def frontend(settings: Settings) -> FrontEnd:
    return FrontEnd(settings)


@pytest.fixture(scope="session")
def digits_8k(fsdd_dir: Path) -> np.ndarray:
    """A 7-digit answer by one FSDD speaker, 8 kHz float32 (about 3 s)."""
    return fsdd_string(fsdd_dir, "jackson", [4, 1, 5, 9, 2, 6, 5], 3)


@pytest.fixture(scope="session")
def libri_16k(librispeech_dir: Path) -> np.ndarray:
    samples, rate = sf.read(librispeech_dir / LIBRI_UTTERANCE, dtype="float32")
    assert rate == 16000
    return samples


@pytest.fixture(scope="session")
def digits_ref(frontend: FrontEnd, digits_8k: np.ndarray) -> Utterance:
    return frontend.from_samples(digits_8k, 8000)


@pytest.fixture(scope="session")
def libri_ref(frontend: FrontEnd, libri_16k: np.ndarray) -> Utterance:
    return frontend.from_samples(libri_16k, 16000)
