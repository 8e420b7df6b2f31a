"""Benchmark inputs: real speech as 8 kHz telephone audio.

FSDD digit strings (one speaker's spoken digits concatenated to the wanted length), optionally passed through
G.711 mu-law, the main telephone case. When the shared FSDD folder is absent, the bundled ``audio_samples``
(FSDD digit strings too) are tiled instead, so the suite still runs from a fresh clone.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voiceauth.audio.codecs import mulaw_decode, mulaw_encode
from voiceauth.audio.io import load_audio
from voiceauth.embedding.base import FloatArray

__all__ = ["RATE", "SpeechSource", "Utterance", "default_fsdd_dir", "default_librispeech_dir", "librispeech_g711"]

RATE = 8000
_REPO = Path(__file__).resolve().parent.parent


def default_fsdd_dir() -> Path:
    return _REPO.parent / "shared" / "data" / "fsdd"


def default_librispeech_dir() -> Path:
    return _REPO.parent / "shared" / "data" / "librispeech-cohort"


@dataclass(frozen=True)
class Utterance:
    speaker: str
    samples: FloatArray


class SpeechSource:
    """Deterministic digit strings per speaker from FSDD files named ``{digit}_{speaker}_{idx}.wav``."""

    def __init__(self, fsdd_dir: Path | None = None, seed: int = 7) -> None:
        root = fsdd_dir or default_fsdd_dir()
        files: dict[str, list[Path]] = defaultdict(list)
        if root.is_dir():
            for p in sorted(root.glob("*.wav")):
                parts = p.stem.split("_")
                if len(parts) == 3:
                    files[parts[1]].append(p)
            self.origin = f"FSDD ({root})"
        else:
            for p in sorted((_REPO / "audio_samples").glob("*_?.wav")):
                files[p.stem.split("_")[0]].append(p)
            self.origin = "bundled audio_samples (FSDD digit strings)"
        if not files:
            raise FileNotFoundError(f"no speech found in {root} nor in audio_samples/")
        self.files = dict(files)
        self.speakers = sorted(self.files)
        self._rng = random.Random(seed)
        self._cache: dict[Path, FloatArray] = {}

    def _load(self, path: Path) -> FloatArray:
        if path not in self._cache:
            audio = load_audio(path)
            if audio.sample_rate != RATE:
                raise ValueError(f"{path} is {audio.sample_rate} Hz; the benchmark expects {RATE} Hz FSDD audio")
            self._cache[path] = audio.samples.astype(np.float32)
        return self._cache[path]

    def string(self, speaker: str, seconds: float, mulaw: bool = True) -> FloatArray:
        """One ``seconds``-long digit string of ``speaker`` (random digits, seeded), mu-law coded if asked."""
        need = int(round(seconds * RATE))
        parts: list[FloatArray] = []
        total = 0
        while total < need:
            seg = self._load(self._rng.choice(self.files[speaker]))
            parts.append(seg)
            total += seg.size
        wav = np.concatenate(parts)[:need].astype(np.float32)
        if mulaw:
            wav = mulaw_decode(mulaw_encode(np.clip(wav, -1.0, 1.0))).astype(np.float32)
        return wav

    def utterances(self, per_speaker: int, seconds: float, mulaw: bool = True) -> list[Utterance]:
        return [Utterance(spk, self.string(spk, seconds, mulaw)) for spk in self.speakers for _ in range(per_speaker)]

    def mixed(self, n: int, low: float, high: float) -> list[FloatArray]:
        """``n`` strings of lengths uniform in ``[low, high]`` seconds, speakers round-robin."""
        return [self.string(self.speakers[i % len(self.speakers)], self._rng.uniform(low, high)) for i in range(n)]


def librispeech_g711(
    readers: int | None = None, per_reader: int = 2, root: Path | None = None, channel: str = "g711_mulaw"
) -> list[Utterance]:
    """LibriSpeech readers' speech through the telephone channel: ``per_reader`` consecutive 3-6 s pieces each.

    ``readers`` (every n-th of the 251, evenly spread) limits the set; [] when the shared folder is absent.
    Pieces of one reader are the target trials, pieces of different readers the non-target ones.
    """
    from voiceauth.scoring.evalsets import librispeech_pieces, load_librispeech

    folder = root or default_librispeech_dir()
    if not folder.is_dir():
        return []
    files, _ = load_librispeech(folder)
    ids = sorted(files)
    if readers is not None and readers < len(ids):
        ids = ids[:: max(1, len(ids) // readers)][:readers]
    pieces = librispeech_pieces(files, ids, channel, max_pieces=per_reader)
    by_reader: dict[str, int] = defaultdict(int)
    for piece in pieces:
        by_reader[piece.speaker] += 1
    return [Utterance(p.speaker, p.samples) for p in pieces if by_reader[p.speaker] >= 2 and p.sample_rate == RATE]
