"""Everything about audio entering the system: decoding, resampling, voice activity, quality.

Public entry points: :class:`FrontEnd` (files, uploads, samples), :class:`StreamingFrontEnd` (stream frames),
the G.711 codecs in :mod:`voiceauth.audio.codecs`, and the :class:`Utterance` / :class:`Quality` results.
"""

from __future__ import annotations

from voiceauth.audio.frontend import FrontEnd, require_speech
from voiceauth.audio.io import Audio, load_audio
from voiceauth.audio.stream import StreamingFrontEnd
from voiceauth.audio.types import FEEDBACK_CODES, Quality, Utterance

__all__ = [
    "FEEDBACK_CODES",
    "Audio",
    "FrontEnd",
    "Quality",
    "StreamingFrontEnd",
    "Utterance",
    "load_audio",
    "require_speech",
]
