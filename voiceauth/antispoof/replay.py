"""Model-free replay check: the same (or near-same) audio presented twice for a speaker is a replay.

A live speaker never produces the same waveform twice; a replayed recording of an earlier attempt does, up to
level, codec and trimming. Each attempt's audio gets a compact binary fingerprint (Haitsma & Kalker, "A highly
robust audio fingerprinting system", ISMIR 2002): at 8 kHz, 128 ms frames every 10 ms, energies in 33 log-spaced
bands between 300 and 3400 Hz, and one bit per adjacent band pair = the sign of the band-energy difference's change
from the previous frame (32 bits a frame). Two fingerprints are compared by their bit error rate (BER) at the best
alignment, over frames where both carry speech-level energy. The same recording, re-encoded (G.711, resampling),
rescaled or trimmed, gives a BER near 0; two takes of the same words by the same speaker give ~0.3-0.45.

Pure functions (:func:`fingerprint`, :func:`compare`, :func:`find_replay`) plus :class:`ReplayGuard`, a small
in-memory per-speaker history with a retention window (persisting fingerprints is the store's business:
:meth:`Fingerprint.to_bytes` / :meth:`Fingerprint.from_bytes`). A fingerprint cannot be turned back into audio.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from voiceauth.antispoof.windows import AntiSpoofError
from voiceauth.audio.resample import resample

__all__ = [
    "DEFAULT_MAX_BER",
    "Fingerprint",
    "Match",
    "ReplayGuard",
    "ReplayPolicy",
    "compare",
    "find_replay",
    "fingerprint",
]

RATE = 8000
FRAME = 1024  # 128 ms
HOP = 80  # 10 ms
N_BANDS = 33
F_LO, F_HI = 300.0, 3400.0
ACTIVE_DB = 35.0  # frames more than this below the loudest frame are ignored
MIN_OVERLAP = 50  # active frames two fingerprints must share (0.5 s) to be compared
DEFAULT_MAX_BER = 0.2
_FORMAT = 1


@dataclass(frozen=True)
class Fingerprint:
    """32-bit sub-fingerprints per 10 ms frame and the mask of frames with speech-level energy."""

    bits: npt.NDArray[np.uint32]
    active: npt.NDArray[np.bool_]

    @property
    def frames(self) -> int:
        return int(self.bits.size)

    def to_bytes(self) -> bytes:
        n = np.array([_FORMAT, self.frames], dtype="<u4").tobytes()
        return n + self.bits.astype("<u4").tobytes() + np.packbits(self.active).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        if len(data) < 8:
            raise AntiSpoofError(f"fingerprint of {len(data)} bytes is truncated; at least 8 are needed")
        fmt, n = (int(v) for v in np.frombuffer(data[:8], dtype="<u4"))
        if fmt != _FORMAT or len(data) != 8 + 4 * n + (n + 7) // 8:
            raise AntiSpoofError(f"not a voiceauth fingerprint (format {fmt}, {len(data)} bytes for {n} frames)")
        bits = np.frombuffer(data[8 : 8 + 4 * n], dtype="<u4").astype(np.uint32)
        active = np.unpackbits(np.frombuffer(data[8 + 4 * n :], dtype=np.uint8))[:n].astype(bool)
        return cls(bits, active)


@dataclass(frozen=True)
class Match:
    """Best alignment of two fingerprints: bit error rate, frame offset (b relative to a), frames compared."""

    ber: float
    offset: int
    overlap: int


@dataclass(frozen=True)
class ReplayPolicy:
    """The replay check: an attempt whose speech matches one of the speaker's earlier attempts (kept
    ``retention_s``) at a fingerprint bit error rate at or below ``max_ber`` is a replay."""

    retention_s: float = 30 * 86_400.0
    max_ber: float = DEFAULT_MAX_BER

    @classmethod
    def from_settings(cls, s: Any) -> ReplayPolicy | None:
        """From ``Settings.replay_*``; None when ``replay_check`` is off."""
        return cls(float(s.replay_retention_s), float(s.replay_max_ber)) if s.replay_check else None


def _band_matrix() -> npt.NDArray[np.float64]:
    freqs = np.fft.rfftfreq(FRAME, 1.0 / RATE)
    edges = np.geomspace(F_LO, F_HI, N_BANDS + 1)
    m = np.zeros((N_BANDS, freqs.size))
    for b in range(N_BANDS):
        m[b] = (freqs >= edges[b]) & (freqs < edges[b + 1])
    return m


_BANDS = _band_matrix()
_WINDOW = np.hanning(FRAME)
_WEIGHTS = (1 << np.arange(N_BANDS - 1, dtype=np.uint64)).astype(np.uint64)


def fingerprint(samples: npt.ArrayLike, sample_rate: int) -> Fingerprint:
    """Fingerprint of mono audio at any sample rate (it is analysed at 8 kHz, the telephone band)."""
    x = np.asarray(samples, dtype=np.float32).ravel()
    if sample_rate <= 0:
        raise AntiSpoofError(f"sample rate {sample_rate} is not valid; use a positive rate such as 8000 or 16000")
    if not np.all(np.isfinite(x)):
        raise AntiSpoofError("audio contains NaN or Inf samples; only finite samples are accepted")
    if sample_rate != RATE:
        x = resample(x, int(sample_rate), RATE)
    if x.size < FRAME + HOP:
        return Fingerprint(np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=bool))
    n = 1 + (x.size - FRAME) // HOP
    idx = np.arange(FRAME)[None, :] + HOP * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(x[idx].astype(np.float64) * _WINDOW, axis=1)) ** 2
    energy = spec @ _BANDS.T + 1e-12  # (n, bands)
    diff = energy[:, :-1] - energy[:, 1:]  # (n, 32)
    bits = (diff[1:] - diff[:-1]) > 0  # (n - 1, 32)
    packed = (bits.astype(np.uint64) * _WEIGHTS).sum(axis=1).astype(np.uint32)
    level = 10.0 * np.log10(energy.sum(axis=1))
    active = (level[1:] > level.max() - ACTIVE_DB) & (level[1:] > -100.0)
    return Fingerprint(packed, active)


_BIT_SHIFTS = np.arange(32, dtype=np.uint32)


def _planes(fp: Fingerprint) -> npt.NDArray[np.float64]:
    """(frames, 34): the active mask, the number of set bits of active frames, and the 32 bit planes (0 where
    inactive)."""
    active = fp.active.astype(np.float64)
    bits = ((fp.bits[:, None] >> _BIT_SHIFTS) & 1).astype(np.float64) * active[:, None]
    return np.column_stack([active, bits.sum(axis=1), bits])


def _spectrum(fp: Fingerprint, length: int, *, reverse: bool = False) -> npt.NDArray[np.complex128]:
    planes = _planes(fp)
    return np.fft.rfft(planes[::-1] if reverse else planes, length, axis=0)


def _fft_length(a: Fingerprint, b: Fingerprint) -> int:
    return 1 << (a.frames + b.frames - 2).bit_length()


def _correlations(
    a: Fingerprint, b: Fingerprint, fa: npt.NDArray[np.complex128] | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """For every alignment of ``b`` against ``a`` (index ``off + b.frames - 1``, ``off`` = frame of ``a`` minus
    frame of ``b``): the number of differing bits over the frames active in both, and that number of frames.

    Per bit plane, ``a xor b = a + b - 2ab``, so each sum is a cross-correlation of 0/1 sequences; all of them are
    computed with FFTs (exact: integer results far below float64's 2**53, rounded)."""
    size = a.frames + b.frames - 1
    length = _fft_length(a, b)
    if fa is None:
        fa = _spectrum(a, length)
    fb = _spectrum(b, length, reverse=True)  # b reversed: a correlation, not a convolution
    both = fa[:, 0] * fb[:, 0]
    differing = fa[:, 1] * fb[:, 0] + fa[:, 0] * fb[:, 1] - 2.0 * np.einsum("fk,fk->f", fa[:, 2:], fb[:, 2:])
    counts = np.rint(np.fft.irfft(both, length)[:size]).astype(np.int64)
    errors = np.rint(np.fft.irfft(differing, length)[:size]).astype(np.int64)
    return errors, counts


def compare(
    a: Fingerprint,
    b: Fingerprint,
    min_overlap: int = MIN_OVERLAP,
    *,
    spectra: dict[int, npt.NDArray[np.complex128]] | None = None,
) -> Match:
    """Lowest bit error rate over all alignments of ``b`` against ``a`` sharing ``min_overlap`` active frames.

    BER 1.0 (no match) when no alignment shares enough active frames. All alignments at once (FFT
    cross-correlations); ``benchmarks/replay_check.py`` checks it against the alignment-by-alignment definition.
    ``spectra``: a cache of ``a``'s spectra by FFT length, for comparing one probe with many fingerprints.
    """
    best = Match(1.0, 0, 0)
    if int(a.active.sum()) < min_overlap or int(b.active.sum()) < min_overlap:
        return best
    fa = None
    if spectra is not None:
        length = _fft_length(a, b)
        fa = spectra.get(length)
        if fa is None:
            fa = spectra[length] = _spectrum(a, length)
    errors, counts = _correlations(a, b, fa)
    enough = counts >= min_overlap
    if not enough.any():
        return best
    ber = np.full(counts.size, np.inf)
    ber[enough] = errors[enough] / (32.0 * counts[enough])
    k = int(np.argmin(ber))  # the first of equal alignments, lowest offset first
    if ber[k] >= best.ber:
        return best
    return Match(float(ber[k]), k - (b.frames - 1), int(counts[k]))


def find_replay(
    probe: Fingerprint,
    history: Iterable[tuple[float, Fingerprint]],
    now: float,
    retention_s: float,
    max_ber: float = DEFAULT_MAX_BER,
) -> Match | None:
    """The closest earlier fingerprint within ``retention_s`` seconds of ``now`` whose BER is at most ``max_ber``.

    ``history`` holds (timestamp in seconds, fingerprint) of earlier attempts *for the same speaker*.
    """
    found: Match | None = None
    spectra: dict[int, npt.NDArray[np.complex128]] = {}  # the probe's, computed once per FFT length
    for ts, fp in history:
        if now - ts > retention_s:
            continue
        m = compare(probe, fp, spectra=spectra)
        if m.ber <= max_ber and (found is None or m.ber < found.ber):
            found = m
    return found


class ReplayGuard:
    """In-memory per-speaker fingerprint history with a retention window. Thread-safe.

    ``check_and_remember`` returns the match if the probe replays a remembered attempt, and remembers the probe
    either way (so a second replay of a replay is caught too).
    """

    def __init__(self, retention_s: float, max_ber: float = DEFAULT_MAX_BER, max_per_speaker: int = 50) -> None:
        if retention_s <= 0 or not 0 < max_ber < 0.5:
            raise AntiSpoofError(f"retention {retention_s} s must be positive and max BER {max_ber} within (0, 0.5)")
        self.retention_s = float(retention_s)
        self.max_ber = float(max_ber)
        self._history: dict[str, deque[tuple[float, Fingerprint]]] = {}
        self._max = int(max_per_speaker)
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> deque[tuple[float, Fingerprint]]:
        q = self._history.setdefault(key, deque(maxlen=self._max))
        while q and now - q[0][0] > self.retention_s:
            q.popleft()
        return q

    def check(self, speaker: str, probe: Fingerprint, now: float) -> Match | None:
        with self._lock:
            q = list(self._prune(speaker, now))
        return find_replay(probe, q, now, self.retention_s, self.max_ber)

    def remember(self, speaker: str, probe: Fingerprint, now: float) -> None:
        with self._lock:
            self._prune(speaker, now).append((now, probe))

    def check_and_remember(self, speaker: str, probe: Fingerprint, now: float) -> Match | None:
        match = self.check(speaker, probe, now)
        self.remember(speaker, probe, now)
        return match
