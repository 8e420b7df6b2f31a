"""IVR prompts: short spoken WAVs made with espeak-ng (GPL-3.0 program, run as a separate process) on first use,
cached as 8 kHz 16-bit mono WAV files. Where espeak-ng is missing, a prompt is a short two-tone chime instead, so a
call flow never fails for want of a voice.

The cache folder is shared by every worker process of a host, which may make the same prompt at the same moment
(their first calls): each writes under a name of its own and moves the finished file into place atomically, so no
process ever reads another's half-written file (that once ended a call before its verification began)."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import soundfile as sf

from voiceauth.audio.codecs import l16_encode
from voiceauth.audio.resample import resample

__all__ = ["PROMPT_TEXT", "PROMPT_RATE", "PromptLibrary"]

log = logging.getLogger(__name__)

PROMPT_RATE = 8000
PROMPT_TEXT = {
    "greeting": "Welcome. Please say a few words so we can recognise your voice.",
    "enter_account": "Please enter your account number, then press hash.",
    "enter_pin": "We could not verify your voice. Please enter your four digit PIN.",
    "verified": "Thank you, you are verified.",
    "transfer": "Please hold while we transfer you to an agent.",
    "goodbye": "Goodbye.",
    "welcome": "Welcome.",
    "say_digits": "To check it is you, please say these digits.",
    "say_new_digits": "Sorry, let's try new digits. Please say.",
    **{
        f"digit_{d}": w
        for d, w in enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"))
    },
}
_DIGIT_GAP_S = 0.25  # between spoken challenge digits


class PromptLibrary:
    """Prompt name -> 16-bit PCM at 8 kHz, generated once and cached in ``folder``. Thread-safe."""

    def __init__(self, folder: Path, *, espeak: str | None = "espeak-ng", texts: dict[str, str] | None = None):
        self.folder = folder
        self.texts = dict(texts or PROMPT_TEXT)
        self.espeak = shutil.which(espeak) if espeak else None
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def pcm16(self, name: str) -> bytes:
        with self._lock:
            if name not in self._cache:
                self._cache[name] = self._load(name)
            return self._cache[name]

    def digits(self, digits: str, *, attempt: int = 1) -> bytes:
        """A liveness challenge as 16-bit PCM at 8 kHz: the request, then each digit (cached prompts, no process per
        call), with short gaps so the caller hears them one by one."""
        gap = b"\x00\x00" * int(_DIGIT_GAP_S * PROMPT_RATE)
        parts = [self.pcm16("say_digits" if attempt <= 1 else "say_new_digits"), gap]
        for d in digits:
            parts += [self.pcm16(f"digit_{d}"), gap]
        return b"".join(parts)

    def _load(self, name: str) -> bytes:
        if name not in self.texts:
            raise KeyError(f"no prompt named {name!r}; known: {', '.join(sorted(self.texts))}")
        path = self.folder / f"{name}.wav"
        if not path.is_file() and self.espeak:
            try:
                self._generate(self.texts[name], path)
            except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
                log.warning("espeak-ng could not make prompt %s (%s); using a chime", name, exc)
        if path.is_file():
            try:
                samples, rate = sf.read(path, dtype="float32", always_2d=False)
            except (OSError, RuntimeError) as exc:  # e.g. a file left damaged by an older version
                log.warning("prompt file %s is unreadable (%s); using a chime", path, exc)
                return l16_encode(_chime())
            if rate != PROMPT_RATE:
                samples = resample(samples, rate, PROMPT_RATE)
            return l16_encode(samples)
        return l16_encode(_chime())

    def _generate(self, text: str, path: Path) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        own = f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}"  # this process's own files: no name is shared
        spoken, final = path.with_name(own + ".espeak.wav"), path.with_name(own + ".wav")
        assert self.espeak is not None
        try:
            subprocess.run(
                [self.espeak, "-s", "165", "-w", str(spoken), text], check=True, capture_output=True, timeout=20
            )
            samples, rate = sf.read(spoken, dtype="float32", always_2d=False)
            out = resample(samples, rate, PROMPT_RATE) if rate != PROMPT_RATE else samples
            peak = float(np.max(np.abs(out))) if out.size else 0.0
            if peak > 0:
                out = out * (0.5 / peak)
            sf.write(final, out, PROMPT_RATE, subtype="PCM_16")
            os.replace(final, path)  # atomic: readers see no file or the whole one
        finally:
            spoken.unlink(missing_ok=True)
            final.unlink(missing_ok=True)


def _chime() -> np.ndarray:
    t = np.arange(int(PROMPT_RATE * 0.15)) / PROMPT_RATE
    return (0.3 * np.concatenate([np.sin(2 * np.pi * 660 * t), np.sin(2 * np.pi * 880 * t)])).astype(np.float32)
