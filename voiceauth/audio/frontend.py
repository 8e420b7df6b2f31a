"""The front end: one entry point for all audio entering the system (files, uploads, samples, streams).

    bytes / file / samples -> decode (WAV, FLAC, raw G.711 / L16; limits checked from the header)
    -> one channel -> resample to 16 kHz -> Silero VAD -> speech only + quality measures -> Utterance

Errors (all :class:`voiceauth.errors.AudioError`): undecodable, truncated or unsupported input, NaN/Inf
samples and over-limit input raise; merely poor audio (silence, tones, noise, clipping, too little speech)
does not, it comes back with feedback codes in ``Utterance.quality.codes``. :func:`require_speech` turns
``NO_SPEECH`` into an exception for callers that cannot use such audio.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from voiceauth.audio.decode import Decoded, DecodeLimits, check_rate, decode_bytes, read_limited
from voiceauth.audio.stream import FrontEndConfig, StreamingFrontEnd
from voiceauth.audio.types import Utterance
from voiceauth.config import Settings
from voiceauth.errors import AudioDecodeError, AudioLimitExceeded, InvalidSamples, NoSpeech

__all__ = ["FrontEnd", "require_speech"]


class FrontEnd:
    """Decode, resample, detect speech and measure quality. Thread-safe (no per-call state is shared)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config = FrontEndConfig(settings)

    @property
    def limits(self) -> DecodeLimits:
        return self.config.limits

    def from_bytes(
        self,
        data: bytes | bytearray | memoryview,
        *,
        fmt: str | None = None,
        sample_rate: int | None = None,
        channel: int | None = None,
        channels: int = 1,
    ) -> Utterance:
        """A WAV/FLAC file's bytes (``fmt`` None sniffs the container) or a raw stream: ``fmt`` in
        ``mulaw``/``alaw``/``l16`` with ``sample_rate`` (and ``channels`` when interleaved)."""
        decoded = decode_bytes(
            data, fmt=fmt, sample_rate=sample_rate, channel=channel, channels=channels, limits=self.config.limits
        )
        return self._run(decoded)

    def from_file(self, path: Path, *, channel: int | None = None) -> Utterance:
        """A WAV or FLAC file (its size is checked before it is read)."""
        data = read_limited(Path(path), self.config.limits)
        return self._run(decode_bytes(data, channel=channel, limits=self.config.limits))

    def from_samples(self, samples: npt.ArrayLike, sample_rate: int, *, narrowband: bool | None = None) -> Utterance:
        """Mono float samples in [-1, 1] at one of the accepted rates."""
        rate = check_rate(sample_rate)
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 1:
            raise AudioDecodeError(f"samples must be a 1-D mono array, got shape {x.shape}")
        if x.size == 0:
            raise AudioDecodeError("no samples given (an empty array)")
        if x.size > self.config.limits.max_duration_s * rate:
            raise AudioLimitExceeded(
                f"{x.size / rate:.1f} s of audio; the limit is {self.config.limits.max_duration_s:g} s"
            )
        if not np.all(np.isfinite(x)):
            raise InvalidSamples("samples contain NaN or infinite values; samples must be finite")
        decoded = Decoded(np.clip(x, -1.0, 1.0), rate, "samples", "float32")
        return self._run(decoded, narrowband=narrowband)

    def stream(self, sample_rate: int, fmt: str = "float", *, narrowband: bool | None = None) -> StreamingFrontEnd:
        """A new incremental front end for one stream (see :class:`StreamingFrontEnd`)."""
        return StreamingFrontEnd(self.config, sample_rate=sample_rate, fmt=fmt, narrowband=narrowband)

    def _run(self, decoded: Decoded, *, narrowband: bool | None = None) -> Utterance:
        if narrowband is None and decoded.narrowband:
            narrowband = True
        pipe = StreamingFrontEnd(
            self.config,
            sample_rate=decoded.sample_rate,
            narrowband=narrowband,
            full_scale=decoded.full_scale,
            source_format=decoded.describe(),
        )
        pipe.feed(decoded.samples)
        return pipe.finish()


def require_speech(utterance: Utterance) -> Utterance:
    """Raise :class:`NoSpeech` when the front end found no speech (silence, tones, DTMF, noise)."""
    if "NO_SPEECH" in utterance.quality.codes:
        raise NoSpeech(
            f"no speech found in {utterance.duration_s:.2f} s of audio ({utterance.source_format}); "
            "silence, tones and DTMF are not speech: send a recording of the caller speaking"
        )
    return utterance
