"""Digit-string recognition for liveness challenges: accuracy on telephone-channel speech and CPU per second.

``python -m benchmarks digits`` (or ``python -m benchmarks.digits``) builds 4-6 digit strings and recognises them
with the production recogniser (:class:`voiceauth.liveness.recognizer.PocketSphinxDigits`: the front end's 16 kHz
speech span, a grammar of exactly the challenge's length) and, as the reference in the same run, PocketSphinx
decoding the 8 kHz audio natively (its US English model's filterbank cut to 4 kHz, the usual recipe for telephone
audio with a 16 kHz model). Speech:

* FSDD (six speakers, 8 kHz recordings) strung together with 0.1-0.3 s gaps, then G.711 mu-law;
* espeak-ng (four voices, three speaking rates) and festival (its default voice) saying the digits, through the
  telephone channel (8 kHz, G.711 mu-law; :func:`voiceauth.antispoof.attacks.telephone_channel`).

Reported: whole-string accuracy (the challenge passes), per-digit accuracy (position by position), the pass rate
with the one-substitution tolerance (``challenge_allow_substitution``), and the recogniser's CPU seconds per second
of audio (``time.process_time``, one thread). Results: ``benchmarks/results/digits.md``.
"""

from __future__ import annotations

import glob
import random
import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from voiceauth.audio.codecs import mulaw_decode, mulaw_encode
from voiceauth.audio.resample import resample
from voiceauth.embedding.base import FloatArray
from voiceauth.liveness.recognizer import DIGIT_WORDS, PocketSphinxDigits

__all__ = ["main", "run"]

RESULTS = Path(__file__).resolve().parent / "results" / "digits.md"
FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"
ESPEAK_VOICES = ("en-us", "en", "en-us+f3", "en+m3")
ESPEAK_RATES = (140, 165, 190)


@dataclass
class Tally:
    strings: int = 0
    strings_ok: int = 0
    strings_tolerant: int = 0
    digits: int = 0
    digits_ok: int = 0
    cpu_s: float = 0.0
    audio_s: float = 0.0

    def add(self, said: str, heard: str, cpu_s: float, audio_s: float) -> None:
        self.strings += 1
        self.strings_ok += heard == said
        wrong = sum(a != b for a, b in zip(said, heard, strict=False)) if len(heard) == len(said) else len(said)
        self.strings_tolerant += wrong <= 1
        self.digits += len(said)
        self.digits_ok += len(said) - wrong
        self.cpu_s += cpu_s
        self.audio_s += audio_s

    def row(self, name: str) -> str:
        return (
            f"| {name} | {self.strings} | {self.strings_ok / self.strings:.1%} | {self.digits_ok / self.digits:.1%}"
            f" | {self.strings_tolerant / self.strings:.1%} | {self.cpu_s / max(self.audio_s, 1e-9):.3f} |"
        )


@dataclass
class Native8k:
    """The reference: PocketSphinx on the 8 kHz audio, the model's filterbank cut to 4 kHz (a model copy)."""

    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ps8k-")))
    _dec: Any = None
    _grammars: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        from pocketsphinx import Decoder, get_model_path

        src = Path(get_model_path()) / "en-us" / "en-us"
        hmm = self.folder / "en-us"
        shutil.copytree(src, hmm)
        params = (hmm / "feat.params").read_text().replace("-upperf 6800", "-upperf 3500")
        (hmm / "feat.params").write_text(params)
        self._dec = Decoder(hmm=str(hmm), samprate=8000, nfft=256, lm=None, logfn="/dev/null", silprob=0.5)

    def recognize(self, speech8k: FloatArray, n: int) -> str:
        if n not in self._grammars:
            words = " | ".join(DIGIT_WORDS)
            grammar = f"#JSGF V1.0;\ngrammar d;\npublic <s> = {' '.join(['<d>'] * n)};\n<d> = {words};\n"
            self._dec.add_jsgf_string(f"g{n}", grammar)
            self._grammars.add(n)
        self._dec.activate_search(f"g{n}")
        peak = float(np.max(np.abs(speech8k))) if speech8k.size else 0.0
        pcm = (np.clip(speech8k * (0.5 / peak if peak else 1.0), -1, 1) * 32767).astype(np.int16).tobytes()
        self._dec.start_utt()
        self._dec.process_raw(pcm, full_utt=True)
        self._dec.end_utt()
        hyp = self._dec.hyp()
        return "".join(str(DIGIT_WORDS.index(w)) for w in (hyp.hypstr.split() if hyp else []) if w in DIGIT_WORDS)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _g711(x8k: FloatArray) -> FloatArray:
    return mulaw_decode(mulaw_encode(np.clip(x8k, -1.0, 1.0)))


def _fsdd_strings(fsdd: Path, per_speaker: int, rng: random.Random) -> Iterator[tuple[str, str, FloatArray]]:
    takes: dict[tuple[str, str], list[str]] = defaultdict(list)
    for f in glob.glob(str(fsdd / "*.wav")):
        d, spk, _ = Path(f).stem.split("_")
        takes[(spk, d)].append(f)
    for spk in sorted({s for s, _ in takes}):
        for _ in range(per_speaker):
            digits = "".join(str(rng.randrange(10)) for _ in range(rng.choice((4, 5, 6))))
            parts = [np.zeros(int(0.3 * 8000), np.float32)]
            for d in digits:
                wav, _sr = sf.read(rng.choice(takes[(spk, d)]), dtype="float32")
                parts += [wav, np.zeros(int(rng.uniform(0.1, 0.3) * 8000), np.float32)]
            parts.append(np.zeros(int(0.5 * 8000), np.float32))
            yield f"FSDD {spk}", digits, _g711(np.concatenate(parts))


def _tts_strings(n: int, rng: random.Random) -> Iterator[tuple[str, str, FloatArray]]:
    from voiceauth.antispoof.attacks import espeak_available, espeak_synthesize

    def spoken(digits: str) -> str:
        return ", ".join(DIGIT_WORDS[int(d)] for d in digits)

    if espeak_available():
        for i in range(n):
            voice, wpm = ESPEAK_VOICES[i % len(ESPEAK_VOICES)], ESPEAK_RATES[i % len(ESPEAK_RATES)]
            digits = "".join(str(rng.randrange(10)) for _ in range(rng.choice((4, 5, 6))))
            x16 = espeak_synthesize(spoken(digits), voice=voice, rate_wpm=wpm)
            yield "espeak-ng", digits, _g711(resample(x16, 16000, 8000))
    text2wave = shutil.which("text2wave")
    if text2wave:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(n):
                digits = "".join(str(rng.randrange(10)) for _ in range(rng.choice((4, 5, 6))))
                out = Path(tmp) / f"f{i}.wav"
                subprocess.run(
                    [text2wave, "-o", str(out)], input=spoken(digits).encode(), check=True, capture_output=True
                )
                x, rate = sf.read(out, dtype="float32")
                yield "festival", digits, _g711(resample(x, int(rate), 8000))


def run(*, per_speaker: int = 25, tts: int = 36, seed: int = 7, out: Path | None = RESULTS) -> dict[str, Tally]:
    from benchmarks.measure import environment
    from voiceauth.audio.frontend import FrontEnd
    from voiceauth.config import Settings

    rng = random.Random(seed)
    fe = FrontEnd(Settings())
    production = PocketSphinxDigits()
    native = Native8k()
    tallies: dict[str, Tally] = defaultdict(Tally)
    sources: list[Callable[[], Iterator[tuple[str, str, FloatArray]]]] = []
    if FSDD.is_dir():
        sources.append(lambda: _fsdd_strings(FSDD, per_speaker, rng))
    sources.append(lambda: _tts_strings(tts, rng))
    try:
        for source in sources:
            for name, digits, x8k in source():
                utt = fe.from_samples(x8k, 8000)
                span = utt.span if utt.span is not None and utt.span.size else utt.speech
                t = time.process_time()
                heard = production.recognize(span, 16000, len(digits)).digits
                cpu = time.process_time() - t
                audio_s = span.size / 16000
                for key in (name, "all (production)"):
                    tallies[key].add(digits, heard, cpu, audio_s)
                if name.startswith("FSDD"):
                    tallies["FSDD all (production)"].add(digits, heard, cpu, audio_s)
                span8 = resample(span, 16000, 8000)
                t = time.process_time()
                heard8 = native.recognize(span8, len(digits))
                cpu8 = time.process_time() - t
                tallies["all (reference: native 8 kHz)"].add(digits, heard8, cpu8, audio_s)
                if name.startswith("FSDD"):
                    tallies["FSDD all (reference: native 8 kHz)"].add(digits, heard8, cpu8, audio_s)
    finally:
        native.close()
    env = environment("cpu")
    lines = [
        "# Liveness digit recognition (telephone channel)",
        "",
        f"CPU: {env['cpu']} ({env['cpu_count']} cores; {', '.join(env['cpu_isa']) or 'no AVX-512'}), one thread;"
        f" pocketsphinx {_version('pocketsphinx')}, python {env['python']}. Command: `python -m benchmarks digits"
        f" --per-speaker {per_speaker} --tts {tts} --seed {seed}`.",
        "",
        "Strings of 4-6 random digits; FSDD recordings (8 kHz) with 0.1-0.3 s gaps, espeak-ng and festival through"
        " 8 kHz G.711 mu-law. Production: the front end's 16 kHz speech span, a grammar of exactly the challenge's"
        " length. Reference (same strings, same run): PocketSphinx on the 8 kHz span with the filterbank cut to 4 kHz.",
        "",
        "| speech | strings | whole string | per digit | with 1 substitution | CPU s per audio s |",
        "|---|---|---|---|---|---|",
    ]
    order = sorted(k for k in tallies if k.startswith("FSDD ") and "(" not in k)
    order += ["FSDD all (production)", "FSDD all (reference: native 8 kHz)", "espeak-ng", "festival"]
    order += ["all (production)", "all (reference: native 8 kHz)"]
    lines += [tallies[k].row(k) for k in order if k in tallies]
    text = "\n".join(lines) + "\n"
    print(text)
    if out is not None:
        out.write_text(text)
    return dict(tallies)


def _version(pkg: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "absent"


def main() -> None:
    run()


if __name__ == "__main__":
    main()
