"""Offline recognition of spoken digit strings, behind a small protocol so another recogniser can replace it.

:class:`PocketSphinxDigits` runs CMU PocketSphinx (BSD-2-Clause; the ``pocketsphinx`` wheel carries the US English
acoustic model and dictionary, so nothing is fetched at run time) with a JSGF grammar of exactly ``n`` digits
("zero" to "nine"; "oh" is left out: the prompt says "zero", and allowing "oh" made it the commonest insertion).
Input is the 16 kHz speech the front end already made (telephone audio upsampled from 8 kHz): on
telephone speech this was far better than decoding at 8 kHz with the 16 kHz model's filterbank cut to 4 kHz
(benchmarks/results/digits.md). A decoder is not thread-safe, so each thread gets its own.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from voiceauth.embedding.base import FloatArray
from voiceauth.errors import ConfigError, ModelError

__all__ = ["DIGIT_WORDS", "DigitRecognizer", "Heard", "PocketSphinxDigits", "create_recognizer"]

log = logging.getLogger(__name__)

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
RATE = 16000


@dataclass(frozen=True)
class Heard:
    """What the recogniser heard: a digit string ("" when nothing was recognised)."""

    digits: str


class DigitRecognizer(Protocol):
    def recognize(self, speech: FloatArray, sample_rate: int, n_digits: int) -> Heard:
        """The ``n_digits``-digit string best matching ``speech`` (mono float32), or "" when none was heard."""
        ...


def _grammar(n: int) -> str:
    words = " | ".join(DIGIT_WORDS)
    return f"#JSGF V1.0;\ngrammar digits;\npublic <s> = {' '.join(['<d>'] * n)};\n<d> = {words};\n"


class PocketSphinxDigits:
    """Digit strings of 1-12 digits with PocketSphinx's US English model (see the module docstring)."""

    def __init__(
        self,
        *,
        silprob: float = 0.5,
        fillprob: float = 1e-2,
        min_speech_s: float = 0.2,
        beam: float = 1e-30,
        wbeam: float = 1e-20,
    ) -> None:
        self.silprob = silprob
        self.fillprob = fillprob
        self.beam = beam  # PocketSphinx's defaults are 1e-48 and 7e-29: these prune more, at half the CPU
        self.wbeam = wbeam  # and the same accuracy on development strings (benchmarks/results/digits.md)
        self.min_speech_s = min_speech_s
        self._local = threading.local()
        self._decoder()  # fail now (missing package or model), not during a call

    def _decoder(self) -> Any:
        dec = getattr(self._local, "decoder", None)
        if dec is None:
            try:
                from pocketsphinx import Decoder
            except ImportError as exc:
                raise ModelError(
                    "the digit recogniser needs the pocketsphinx package (pip install pocketsphinx)"
                ) from exc
            try:
                dec = Decoder(
                    samprate=RATE,
                    lm=None,
                    logfn="/dev/null",
                    silprob=self.silprob,
                    fillprob=self.fillprob,
                    beam=self.beam,
                    wbeam=self.wbeam,
                )
            except RuntimeError as exc:
                raise ModelError(f"PocketSphinx could not load its US English model: {exc}") from exc
            self._local.decoder, self._local.grammars = dec, set()
        return dec

    def recognize(self, speech: FloatArray, sample_rate: int, n_digits: int) -> Heard:
        if not 1 <= n_digits <= 12:
            raise ConfigError(f"a digit string of {n_digits} digits cannot be recognised; use 1 to 12 digits")
        if sample_rate != RATE:
            from voiceauth.audio.resample import resample

            speech = resample(speech, sample_rate, RATE)
        if speech.size < self.min_speech_s * RATE:
            return Heard("")
        dec = self._decoder()
        name = f"digits{n_digits}"
        if name not in self._local.grammars:
            dec.add_jsgf_string(name, _grammar(n_digits))
            self._local.grammars.add(name)
        dec.activate_search(name)
        peak = float(np.max(np.abs(speech)))
        scaled = speech * (0.5 / peak) if peak > 0 else speech
        pcm = (np.clip(scaled, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()
        hyp = dec.hyp()
        words = hyp.hypstr.split() if hyp is not None else []
        digits = "".join(str(DIGIT_WORDS.index(w)) for w in words if w in DIGIT_WORDS)
        return Heard(digits)


def create_recognizer(name: str = "pocketsphinx", *, processes: int = 0) -> DigitRecognizer:
    """The recogniser ``name``, in this process or (``processes`` > 0, ``Settings.liveness_recognizer_processes``)
    in that many worker processes (:class:`voiceauth.liveness.process.ProcessDigits`)."""
    if processes > 0:
        from voiceauth.liveness.process import ProcessDigits

        return ProcessDigits(name, processes=processes)
    if name == "pocketsphinx":
        return PocketSphinxDigits()
    raise ConfigError(f"digit recogniser {name!r} is not known; use pocketsphinx")
