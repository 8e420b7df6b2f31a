"""Value types produced by the audio front end and consumed by enrolment and verification.

This is the contract between the front end (``voiceauth.audio``) and the core (enrolment, verification, IVR).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voiceauth.embedding.base import FloatArray

__all__ = ["FEEDBACK_CODES", "Quality", "Utterance"]

#: feedback codes a caller-facing flow can act on; ``OK`` only when no other code applies
FEEDBACK_CODES = ("OK", "NO_SPEECH", "TOO_SHORT", "TOO_NOISY", "CLIPPED", "TOO_QUIET")


@dataclass(frozen=True)
class Quality:
    net_speech_s: float  # seconds of speech found by VAD
    snr_db: float  # estimated speech-to-noise ratio
    clipping_ratio: float  # fraction of samples at full scale
    level_dbfs: float  # speech level (RMS of speech, dBFS)
    codes: tuple[str, ...] = field(default=("OK",))

    @property
    def ok(self) -> bool:
        return self.codes == ("OK",)


@dataclass(frozen=True)
class Utterance:
    """Decoded, resampled, speech-only audio with its quality measures."""

    speech: FloatArray  # mono float32 at ``sample_rate``: what is embedded (speech with its context; the band
    # audio_band matches: the telephone band unless "wide"); empty when the VAD found no speech
    sample_rate: int  # 16000 (the engine's rate)
    duration_s: float  # total decoded duration, silence included
    narrowband: bool  # came through a telephone channel (<= 8 kHz rate or G.711 codec)
    quality: Quality
    source_format: str = ""  # human-readable, e.g. "wav pcm16 8000 Hz 2 ch (channel 0)"
    segments: tuple[tuple[float, float], ...] = ()  # speech (start, end) seconds in the decoded audio
    source_sample_rate: int = 0  # the rate the audio arrived at (0 = unknown)
    # 16 kHz audio from the first speech onset to the last offset, pauses kept (None: not kept): the anti-spoofing
    # input; AASIST scores VAD-concatenated speech as spoof-like (benchmarks/results/antispoof.md)
    span: FloatArray | None = None
    # the same as ``speech`` at full band: wideband input with audio_band="auto" only (None otherwise)
    speech_wide: FloatArray | None = None
    # whether ``speech`` is telephone band (embedded with the telephone-adapted network); False only for wideband
    # input with audio_band="wide", where ``speech`` is the full band
    speech_telephone: bool = True
