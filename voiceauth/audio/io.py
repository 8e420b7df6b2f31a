"""Reading audio files into mono float32 waveforms for the command line and offline tools.

Goes through the front end's decoder (:mod:`voiceauth.audio.decode`), so files read here obey the same formats,
limits and errors as uploads: one place for all audio entering the system.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from voiceauth.audio.decode import DecodeLimits, decode_bytes, read_limited
from voiceauth.embedding.base import FloatArray

__all__ = ["Audio", "load_audio"]


@dataclass(frozen=True)
class Audio:
    samples: FloatArray  # mono float32 in [-1, 1]
    sample_rate: int

    @property
    def seconds(self) -> float:
        return float(self.samples.size) / float(self.sample_rate)


def load_audio(path: Path, channel: int | None = None, limits: DecodeLimits | None = None) -> Audio:
    """Decode a WAV or FLAC file (one channel: ``channel``, default the first); raises ``AudioError`` subclasses."""
    limits = limits or DecodeLimits()
    decoded = decode_bytes(read_limited(Path(path), limits), channel=channel, limits=limits)
    return Audio(decoded.samples, decoded.sample_rate)
