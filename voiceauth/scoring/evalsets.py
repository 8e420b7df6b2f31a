"""Evaluation and cohort sets built from the shared speech data (deterministic, disjoint by reader).

* :func:`split_readers` splits the LibriSpeech readers into a *cohort* half (impostor cohort, any trained
  back end, calibration and operating points) and an *evaluation* half (accuracy only), balanced by sex.
* :func:`cut_pieces` cuts one utterance into consecutive pieces of 3-6 s so each reader has several.
* :func:`telephone_channel` passes 16 kHz audio through an 8 kHz G.711 channel (resample, encode, decode).
* :func:`fsdd_digit_strings` concatenates 5-8 spoken digits of one FSDD speaker into ~3 s "account numbers".

All of it is pure except the two ``load_*`` functions, which read ``../shared/data``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torchaudio.functional as AF

from voiceauth.audio.io import load_audio
from voiceauth.embedding.base import FloatArray
from voiceauth.errors import ConfigError

__all__ = [
    "Channel",
    "Piece",
    "crop_pieces",
    "cut_pieces",
    "fsdd_digit_strings",
    "librispeech_pieces",
    "load_librispeech",
    "read_speakers",
    "split_readers",
    "telephone_channel",
]

Channel = Literal["wideband", "g711_mulaw", "g711_alaw"]
CHANNELS: tuple[str, ...] = ("wideband", "g711_mulaw", "g711_alaw")


@dataclass(frozen=True)
class Piece:
    """One trial-ready piece of audio: ``speaker`` is the trial label, ``key`` is unique and stable."""

    key: str
    speaker: str
    samples: FloatArray
    sample_rate: int

    @property
    def seconds(self) -> float:
        return float(self.samples.size) / float(self.sample_rate)


def read_speakers(speakers_txt: Path) -> dict[str, str]:
    """LibriSpeech ``SPEAKERS.TXT`` -> {reader id: sex}."""
    out: dict[str, str] = {}
    for line in speakers_txt.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) >= 2:
            out[fields[0]] = fields[1]
    return out


def split_readers(readers: Sequence[str], sex: dict[str, str]) -> tuple[list[str], list[str]]:
    """Deterministic disjoint halves (cohort, evaluation), balanced by sex.

    Readers are ordered by (sex, sha256 of the id) and dealt alternately: even positions -> cohort,
    odd -> evaluation. The hash makes the deal independent of the numeric order of reader ids.
    """
    ordered = sorted(set(readers), key=lambda r: (sex.get(r, "?"), hashlib.sha256(r.encode()).hexdigest()))
    cohort = sorted(ordered[0::2])
    evaluation = sorted(ordered[1::2])
    return cohort, evaluation


def cut_pieces(samples: FloatArray, sample_rate: int, min_s: float = 3.0, max_s: float = 6.0) -> list[FloatArray]:
    """Cut into ``floor(len / min_s)`` equal consecutive pieces (each in [min_s, max_s)); [] if too short."""
    if not 0 < min_s <= max_s / 2:
        raise ConfigError(f"piece bounds min_s={min_s}, max_s={max_s}: need 0 < min_s <= max_s / 2")
    total = samples.size / sample_rate
    n = int(total // min_s)
    if n == 0:
        return []
    step = samples.size // n
    return [np.ascontiguousarray(samples[i * step : (i + 1) * step]) for i in range(n)]


def crop_pieces(pieces: Sequence[Piece], seconds: float) -> list[Piece]:
    """The first ``seconds`` of every piece (a caller's short answer starts where the piece starts); pieces that
    are not longer stay whole. Keys get a ``-c<seconds>`` suffix, so crops and whole pieces never share a key."""
    if seconds <= 0:
        raise ConfigError(f"crop length {seconds} s: need a positive number of seconds")
    out: list[Piece] = []
    for p in pieces:
        n = int(round(seconds * p.sample_rate))
        out.append(Piece(f"{p.key}-c{seconds:g}", p.speaker, np.ascontiguousarray(p.samples[:n]), p.sample_rate))
    return out


def _g711_roundtrip(y: FloatArray, channel: str) -> FloatArray:
    """G.711 encode + decode with the front end's codec (``voiceauth.audio.codecs``)."""
    from voiceauth.audio.codecs import alaw_decode, alaw_encode, mulaw_decode, mulaw_encode

    if channel == "g711_mulaw":
        return np.asarray(mulaw_decode(mulaw_encode(y)), dtype=np.float32)
    return np.asarray(alaw_decode(alaw_encode(y)), dtype=np.float32)


def telephone_channel(samples: FloatArray, sample_rate: int, channel: str) -> tuple[FloatArray, int]:
    """Pass audio through ``channel``: wideband -> unchanged (16 kHz); G.711 -> 8 kHz encode/decode round trip."""
    if channel not in CHANNELS:
        raise ConfigError(f"channel {channel!r} is not known; use one of {', '.join(CHANNELS)}")
    x = torch.from_numpy(np.asarray(samples, dtype=np.float32))
    if channel == "wideband":
        if sample_rate != 16000:
            x = AF.resample(x, sample_rate, 16000)
        return x.numpy().astype(np.float32), 16000
    if sample_rate != 8000:
        x = AF.resample(x, sample_rate, 8000)
    y = np.clip(x.numpy(), -1.0, 1.0).astype(np.float32)
    return _g711_roundtrip(y, channel), 8000


def load_librispeech(folder: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """{reader id: flac path} and {reader id: sex} of the shared LibriSpeech cohort folder."""
    files = {p.name.split("-")[0]: p for p in sorted(folder.glob("*.flac"))}
    if not files:
        raise ConfigError(f"no LibriSpeech .flac files in {folder}; expected ../shared/data/librispeech-cohort")
    return files, read_speakers(folder / "SPEAKERS.TXT")


def librispeech_pieces(
    files: dict[str, Path],
    readers: Sequence[str],
    channel: str,
    min_s: float = 3.0,
    max_s: float = 6.0,
    max_pieces: int | None = None,
) -> list[Piece]:
    """Every reader's utterance cut into pieces (the first ``max_pieces`` of them) passed through ``channel``."""
    out: list[Piece] = []
    for reader in readers:
        audio = load_audio(files[reader])
        for i, piece in enumerate(cut_pieces(audio.samples, audio.sample_rate, min_s, max_s)[:max_pieces]):
            wav, sr = telephone_channel(piece, audio.sample_rate, channel)
            out.append(Piece(f"ls-{reader}-{i}-{channel}", reader, wav, sr))
    return out


def fsdd_digit_strings(
    folder: Path,
    per_speaker: int = 24,
    channel: str = "g711_alaw",
    seed: int = 20240,
    gap_s: float = 0.08,
) -> list[Piece]:
    """Strings of 5-8 random digits (different recordings in every string) of each FSDD speaker, ~3 s.

    Recordings are drawn without replacement per speaker, so no recording appears in two strings.
    """
    by_speaker: dict[str, list[Path]] = {}
    for p in sorted(folder.glob("*.wav")):
        parts = p.stem.split("_")
        if len(parts) == 3:
            by_speaker.setdefault(parts[1], []).append(p)
    if not by_speaker:
        raise ConfigError(f"no FSDD files in {folder}; expected ../shared/data/fsdd")
    rng = np.random.default_rng(seed)
    out: list[Piece] = []
    for speaker in sorted(by_speaker):
        paths = list(by_speaker[speaker])
        order = rng.permutation(len(paths))
        pos = 0
        for k in range(per_speaker):
            n = int(rng.integers(5, 9))
            chunk = [paths[j] for j in order[pos : pos + n]]
            pos += n
            parts_wav: list[FloatArray] = []
            sr = 8000
            for path in chunk:
                a = load_audio(path)
                sr = a.sample_rate
                parts_wav.append(a.samples)
                parts_wav.append(np.zeros(int(gap_s * sr), dtype=np.float32))
            wav = np.concatenate(parts_wav).astype(np.float32)
            wav, sr = telephone_channel(wav, sr, channel)
            out.append(Piece(f"fsdd-{speaker}-{k}-{channel}", speaker, wav, sr))
    return out
