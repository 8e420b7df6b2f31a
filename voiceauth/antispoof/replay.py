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

import numpy as np
import numpy.typing as npt

from voiceauth.antispoof.windows import AntiSpoofError
from voiceauth.audio.resample import resample

__all__ = [
    "DEFAULT_MAX_BER",
    "Fingerprint",
    "Match",
    "ReplayGuard",
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


def _popcount32(v: npt.NDArray[np.uint32]) -> npt.NDArray[np.int64]:
    return np.unpackbits(v.astype("<u4").view(np.uint8).reshape(-1, 4), axis=1).sum(axis=1).astype(np.int64)


def compare(a: Fingerprint, b: Fingerprint, min_overlap: int = MIN_OVERLAP) -> Match:
    """Lowest bit error rate over all alignments of ``b`` against ``a`` sharing ``min_overlap`` active frames.

    BER 1.0 (no match) when no alignment shares enough active frames.
    """
    best = Match(1.0, 0, 0)
    if a.frames == 0 or b.frames == 0:
        return best
    for off in range(-(b.frames - 1), a.frames):
        a0, b0 = max(0, off), max(0, -off)
        n = min(a.frames - a0, b.frames - b0)
        mask = a.active[a0 : a0 + n] & b.active[b0 : b0 + n]
        k = int(mask.sum())
        if k < min_overlap:
            continue
        xor = np.bitwise_xor(a.bits[a0 : a0 + n][mask], b.bits[b0 : b0 + n][mask])
        ber = float(_popcount32(xor).sum()) / (32.0 * k)
        if ber < best.ber:
            best = Match(ber, off, k)
    return best


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
    for ts, fp in history:
        if now - ts > retention_s:
            continue
        m = compare(probe, fp)
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
