"""Countermeasure metrics (ISO/IEC 30107-3 names) and scoring of audio folders.

Scores are spoof log-odds (higher = more likely spoof). At a threshold ``t``:
APCER = share of attack presentations (spoof) scored below ``t`` (accepted as bona fide);
BPCER = share of bona fide presentations scored at or above ``t`` (refused as spoof);
EER = where the two are equal over all thresholds (``voiceauth.scoring.metrics.eer`` with spoof as "target").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voiceauth.antispoof.countermeasure import Countermeasure
from voiceauth.antispoof.windows import AntiSpoofError
from voiceauth.audio.io import load_audio
from voiceauth.audio.resample import resample
from voiceauth.embedding.base import FloatArray
from voiceauth.scoring.metrics import eer as _eer

__all__ = [
    "AUDIO_SUFFIXES",
    "SpoofMetrics",
    "audio_files",
    "score_files",
    "service_channel",
    "spoof_metrics",
    "threshold_for_bpcer",
]

AUDIO_SUFFIXES = (".wav", ".flac")


@dataclass(frozen=True)
class SpoofMetrics:
    eer: float
    apcer: float
    bpcer: float
    threshold: float
    n_bonafide: int
    n_spoof: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def spoof_metrics(bonafide: npt.ArrayLike, spoof: npt.ArrayLike, threshold: float) -> SpoofMetrics:
    """EER, APCER and BPCER (fractions, 0-1) for spoof log-odds scores at ``threshold``."""
    b = np.asarray(bonafide, dtype=np.float64).ravel()
    s = np.asarray(spoof, dtype=np.float64).ravel()
    if b.size == 0 or s.size == 0:
        raise AntiSpoofError(f"need bona fide and spoof scores, got {b.size} and {s.size}")
    return SpoofMetrics(
        eer=_eer(s, b),
        apcer=float(np.mean(s < threshold)),
        bpcer=float(np.mean(b >= threshold)),
        threshold=float(threshold),
        n_bonafide=int(b.size),
        n_spoof=int(s.size),
    )


def audio_files(directory: Path) -> list[Path]:
    """The WAV/FLAC files in ``directory`` and its sub-folders (a folder tree, e.g. one folder per speaker or
    engine), sorted by path; hidden files and folders are skipped; an error if there are none."""
    if not directory.is_dir():
        raise AntiSpoofError(f"{directory} is not a directory; give a folder (tree) of .wav or .flac files")
    files = sorted(
        p
        for p in directory.rglob("*")
        if p.is_file()
        and p.suffix.lower() in AUDIO_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )
    if not files:
        raise AntiSpoofError(f"{directory} holds no .wav or .flac files (searched its sub-folders too)")
    return files


def threshold_for_bpcer(bonafide: npt.ArrayLike, target: float) -> float:
    """The lowest threshold at which at most ``target`` (0-1) of the bona fide scores are at or above it."""
    if not 0.0 <= target < 1.0:
        raise AntiSpoofError(f"target BPCER {target!r} is not a fraction in [0, 1); e.g. 0.01 for 1%")
    b = np.sort(np.asarray(bonafide, dtype=np.float64).ravel())
    if b.size == 0:
        raise AntiSpoofError("need bona fide scores to set a threshold from a target BPCER")
    k = int(np.floor(target * b.size))  # at most k bona fide presentations may be refused
    return float(np.nextafter(b[b.size - k - 1], np.inf))


def load_16k(path: Path) -> FloatArray:
    audio = load_audio(path)
    return resample(audio.samples, audio.sample_rate, 16_000) if audio.sample_rate != 16_000 else audio.samples


def service_channel(frontend: Any, telephone: bool) -> Callable[[FloatArray], FloatArray]:
    """What the service gives the countermeasure for a 16 kHz recording: through the front end (``frontend``:
    :class:`voiceauth.audio.frontend.FrontEnd`: band matching, VAD) to the speech span (``Utterance.span``), after
    an 8 kHz G.711 mu-law call leg when ``telephone``."""
    from voiceauth.audio.codecs import mulaw_decode, mulaw_encode

    def channel(x: FloatArray) -> FloatArray:
        if telephone:
            narrow = mulaw_decode(mulaw_encode(np.clip(resample(x, 16_000, 8_000), -1.0, 1.0)))
            utt = frontend.from_samples(narrow, 8_000, narrowband=True)
        else:
            utt = frontend.from_samples(np.clip(x, -1.0, 1.0), 16_000)
        out = utt.span if utt.span is not None and utt.span.size else utt.speech
        if out.size == 0:
            raise AntiSpoofError("the front end found no speech in a file; every file must hold speech")
        return np.asarray(out, dtype=np.float32)

    return channel


def score_files(
    cm: Countermeasure,
    files: Iterable[Path],
    channel: Callable[[FloatArray], FloatArray] | None = None,
) -> list[float]:
    """Pooled spoof score of each file (loaded, resampled to 16 kHz, passed through ``channel`` if given)."""
    out: list[float] = []
    for path in files:
        x = load_16k(path)
        if channel is not None:
            x = channel(x)
        out.append(cm.score(x).score)
    return out
