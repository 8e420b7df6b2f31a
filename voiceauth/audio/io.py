"""Reading audio files into mono float32 waveforms (minimal; the telephony front end extends it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from voiceauth.embedding.base import FloatArray
from voiceauth.errors import AudioDecodeError

__all__ = ["Audio", "load_audio"]


@dataclass(frozen=True)
class Audio:
    samples: FloatArray  # mono float32 in [-1, 1]
    sample_rate: int

    @property
    def seconds(self) -> float:
        return float(self.samples.size) / float(self.sample_rate)


def load_audio(path: Path, channel: int = 0) -> Audio:
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioDecodeError(f"cannot decode {path}: {exc}; accepted: WAV or FLAC") from exc
    return Audio(np.ascontiguousarray(data[:, channel]), int(rate))
