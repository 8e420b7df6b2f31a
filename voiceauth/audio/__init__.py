"""Everything about audio entering the system: decoding, resampling, voice activity, quality."""

from __future__ import annotations

from voiceauth.audio.io import Audio, load_audio

__all__ = ["Audio", "load_audio"]
