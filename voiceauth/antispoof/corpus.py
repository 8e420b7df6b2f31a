"""The countermeasure's training and development corpus, built only from the data issue 16 allows (dev tool).

Bona fide: the **cohort half** of the LibriSpeech readers (``voiceauth.scoring.evalsets.split_readers``; every fifth
cohort reader is development data, the rest training) cut into 3-6 s pieces, and FSDD digit strings of 4-7 digits
from takes 0-19 (training) and 20-24 (development) of each speaker. FSDD takes 25-49 and the evaluation half of the
LibriSpeech readers are never read here: they are the held-out bona fide sets of ``benchmarks/antispoof_telephone``.

Spoof, generated locally from three families ("engines"):

* ``espeak``: espeak-ng, every stock English voice with variants, 110-230 wpm, pitch 20-80;
* ``festival``: Festival with its Debian voices ``kal_diphone``, ``ked_diphone`` (diphone) and
  ``cmu_us_slt_arctic_hts`` (HTS, MLSA vocoder), at several speaking rates;
* ``vocoded``: WORLD and MLSA copy-synthesis of the bona fide pieces of the same split (:mod:`.vocode`).

Texts are random sentences from a fixed vocabulary (never the benchmark's attack sentences). Piper is never used.
Every piece is returned at its native rate; :mod:`voiceauth.antispoof.train` puts each through the random telephone
channel (:mod:`.channel`).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from voiceauth.antispoof.attacks import espeak_synthesize
from voiceauth.antispoof.windows import AntiSpoofError
from voiceauth.audio.io import load_audio
from voiceauth.embedding.base import FloatArray
from voiceauth.scoring.evalsets import cut_pieces, load_librispeech, split_readers

__all__ = [
    "ENGINES",
    "FESTIVAL_VOICES",
    "Segment",
    "bona_fide",
    "espeak_voices",
    "festival_available",
    "festival_synthesize",
    "random_texts",
    "spoofs",
]

log = logging.getLogger(__name__)

ENGINES: tuple[str, ...] = ("espeak", "festival", "vocoded")
FESTIVAL_VOICES: tuple[str, ...] = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
FSDD_TRAIN_TAKES = range(0, 20)
FSDD_DEV_TAKES = range(20, 25)  # takes 25-49 are held out for evaluation

_WORDS = (
    "account balance card payment transfer bank savings loan mortgage branch statement credit debit number "
    "morning evening yesterday today tomorrow week month year house street city river garden window letter "
    "family friend mother father brother sister child doctor teacher driver office meeting travel ticket "
    "money price order delivery parcel address phone message reason problem question answer service help "
    "please thank you could would should will can may must need want like know think see hear call send "
    "check open close change cancel confirm verify update reset block replace report pay move wait speak "
    "quickly slowly really always never often sometimes again only still already soon late early here there "
    "new old small large good bad long short right wrong last next first second third final important "
    "zero one two three four five six seven eight nine ten twenty hundred thousand pounds dollars euros"
).split()
_FRAMES = (
    "I would like to {v} my {n} please.",
    "Could you {v} the {n} for me today?",
    "My {n} number is {d}.",
    "I need to {v} a {n} before {t}.",
    "The {a} {n} was {a} and the {n} was {a}.",
    "{d}.",
    "Yes, I want to {v} the {n} and {v} my {n}.",
    "Please {v} my {n}, it ends in {d}.",
    "We {v} the {a} {n} near the {n} {t}.",
    "Is it possible to {v} my {n} {t}?",
)
_VERBS = "check open close change cancel confirm verify update reset block replace report pay move".split()
_NOUNS = "account balance card payment transfer loan mortgage statement address phone ticket order parcel".split()
_ADJ = "new old small large good last next first important long short".split()
_TIMES = "today tomorrow yesterday soon".split() + ["next week", "this evening", "on Monday"]
_DIGITS = "zero one two three four five six seven eight nine oh".split()


@dataclass(frozen=True)
class Segment:
    """One piece of the corpus: ``label`` 1 = spoof, 0 = bona fide; ``engine`` its source; ``split`` train/dev."""

    key: str
    label: int
    engine: str
    split: str
    samples: FloatArray
    rate: int


def random_texts(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` random sentences from a fixed vocabulary and sentence frames (deterministic for a seed)."""
    out: list[str] = []
    for _ in range(n):
        frame = _FRAMES[int(rng.integers(len(_FRAMES)))]
        digits = " ".join(_DIGITS[int(i)] for i in rng.integers(0, len(_DIGITS), size=int(rng.integers(4, 9))))
        words = " ".join(_WORDS[int(i)] for i in rng.integers(0, len(_WORDS), size=int(rng.integers(3, 7))))
        text = frame.format(
            v=_VERBS[int(rng.integers(len(_VERBS)))],
            n=_NOUNS[int(rng.integers(len(_NOUNS)))],
            a=_ADJ[int(rng.integers(len(_ADJ)))],
            t=_TIMES[int(rng.integers(len(_TIMES)))],
            d=digits,
        )
        out.append(text if rng.random() < 0.7 else f"{text} {words.capitalize()}.")
    return out


# -- bona fide ---------------------------------------------------------------------------------------------


def _fsdd_strings(folder: Path, takes: range, rng: np.random.Generator, split: str) -> list[Segment]:
    by_speaker: dict[str, list[Path]] = {}
    for p in sorted(folder.glob("*.wav")):
        parts = p.stem.split("_")
        if len(parts) == 3 and int(parts[2]) in takes:
            by_speaker.setdefault(parts[1], []).append(p)
    if not by_speaker:
        raise AntiSpoofError(f"no FSDD files in {folder}; expected ../shared/data/fsdd")
    out: list[Segment] = []
    for speaker in sorted(by_speaker):
        paths = [by_speaker[speaker][int(i)] for i in rng.permutation(len(by_speaker[speaker]))]
        pos, k = 0, 0
        while pos < len(paths):
            n = int(rng.integers(4, 8))
            chunk = paths[pos : pos + n]
            pos += n
            if len(chunk) < 3:
                break
            gap = np.zeros(int(8000 * rng.uniform(0.03, 0.15)), dtype=np.float32)
            wav = np.concatenate([np.concatenate([load_audio(p).samples, gap]) for p in chunk]).astype(np.float32)
            out.append(Segment(f"fsdd-{speaker}-{split}-{k}", 0, "fsdd", split, wav, 8000))
            k += 1
    return out


def bona_fide(data: Path, rng: np.random.Generator) -> list[Segment]:
    """LibriSpeech cohort-half pieces and FSDD digit strings (takes 0-24), each marked train or dev."""
    files, sex = load_librispeech(data / "librispeech-cohort")
    cohort, _evaluation = split_readers(list(files), sex)
    dev_readers = set(cohort[::5])
    out: list[Segment] = []
    for reader in cohort:
        split = "dev" if reader in dev_readers else "train"
        audio = load_audio(files[reader])
        for i, piece in enumerate(cut_pieces(audio.samples, audio.sample_rate, 3.0, 6.0)):
            out.append(Segment(f"ls-{reader}-{i}", 0, "librispeech", split, piece, audio.sample_rate))
    out += _fsdd_strings(data / "fsdd", FSDD_TRAIN_TAKES, rng, "train")
    out += _fsdd_strings(data / "fsdd", FSDD_DEV_TAKES, rng, "dev")
    return out


# -- spoof engines -------------------------------------------------------------------------------------------


def espeak_voices() -> list[str]:
    """Stock English espeak-ng voices (no mbrola) crossed with its variants, as ``voice+variant`` names."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise AntiSpoofError("espeak-ng is not installed; install the Debian package espeak-ng")
    listing = subprocess.run([exe, "--voices=en"], capture_output=True, text=True, check=False).stdout
    voices = sorted(
        {ln.split()[1] for ln in listing.splitlines()[1:] if ln.split() and "mb/" not in ln and "!v/" not in ln}
    )
    variants = subprocess.run([exe, "--voices=variant"], capture_output=True, text=True, check=False).stdout
    files = sorted({f for ln in variants.splitlines()[1:] for f in ln.split() if f.startswith("!v/")})
    return list(voices) + [f"{v}+{f[3:]}" for v in voices for f in files]


def festival_available() -> bool:
    return shutil.which("text2wave") is not None


def festival_synthesize(text: str, voice: str, stretch: float = 1.0) -> tuple[FloatArray, int]:
    """Speak ``text`` with Festival's ``voice`` (``text2wave``); mono float32 at the voice's rate."""
    exe = shutil.which("text2wave")
    if exe is None:
        raise AntiSpoofError("festival is not installed; install the Debian packages festival and festvox-*")
    if voice not in FESTIVAL_VOICES:
        raise AntiSpoofError(f"festival voice {voice!r} is not supported; use one of {', '.join(FESTIVAL_VOICES)}")
    with tempfile.TemporaryDirectory() as tmp:
        txt, wav = Path(tmp) / "in.txt", Path(tmp) / "out.wav"
        txt.write_text(text, encoding="utf-8")
        cmd = [exe, "-eval", f"(voice_{voice})", "-eval", f"(Parameter.set 'Duration_Stretch {stretch:.2f})"]
        proc = subprocess.run([*cmd, str(txt), "-o", str(wav)], capture_output=True, check=False, timeout=120)
        if proc.returncode != 0 or not wav.is_file():
            raise AntiSpoofError(f"festival failed for voice {voice}: {proc.stderr.decode(errors='replace')[:200]}")
        data, rate = sf.read(str(wav), dtype="float32")
    if data.size == 0:
        raise AntiSpoofError(f"festival produced no audio for voice {voice} and {text[:40]!r}")
    return (data.mean(axis=1) if data.ndim > 1 else data).astype(np.float32), int(rate)


def _espeak(n: int, split: str, rng: np.random.Generator) -> Iterator[Segment]:
    voices = espeak_voices()
    for i, text in enumerate(random_texts(n, rng)):
        voice = voices[int(rng.integers(len(voices)))]
        x = espeak_synthesize(text, voice, int(rng.integers(110, 231)), int(rng.integers(20, 81)))
        yield Segment(f"espeak-{split}-{i}-{voice}", 1, "espeak", split, x, 16000)


def _festival(n: int, split: str, rng: np.random.Generator) -> Iterator[Segment]:
    for i, text in enumerate(random_texts(n, rng)):
        voice = FESTIVAL_VOICES[i % len(FESTIVAL_VOICES)]
        x, rate = festival_synthesize(text, voice, float(rng.uniform(0.8, 1.3)))
        yield Segment(f"festival-{split}-{i}-{voice}", 1, "festival", split, x, rate)


def _vocoded(bona: Sequence[Segment], rng: np.random.Generator) -> Iterator[Segment]:
    from voiceauth.antispoof.vocode import vocode

    for i, seg in enumerate(bona):
        kinds = ["world"] + (["mlsa"] if i % 2 == 0 else [])
        for kind in kinds:
            y = vocode(seg.samples, seg.rate, kind, rng)
            yield Segment(f"{kind}-{seg.key}", 1, "vocoded", seg.split, y, seg.rate)


def spoofs(
    bona: Sequence[Segment], rng: np.random.Generator, engines: Sequence[str] = ENGINES, scale: float = 1.0
) -> list[Segment]:
    """The spoof pieces of ``engines`` (train and dev splits; ``scale`` multiplies the TTS counts)."""
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        raise AntiSpoofError(f"unknown spoof engine(s) {', '.join(unknown)}; use {', '.join(ENGINES)}")
    out: list[Segment] = []
    counts = {"train": int(480 * scale), "dev": int(120 * scale)}
    for split, n in counts.items():
        if "espeak" in engines:
            out += list(_espeak(n, split, rng))
        if "festival" in engines:
            if festival_available():
                out += list(_festival(n // 2, split, rng))
            else:
                log.warning("festival is not installed: no festival spoofs in the corpus")
    if "vocoded" in engines:
        out += list(_vocoded(bona, rng))
    return out
