"""In-band DTMF detection (ITU-T Q.23/Q.24 tone pairs) with the Goertzel algorithm, for streams that do not report
digits. Pure: float samples in (8 kHz natively; other rates work), digits out, chunked any way.

Each 20 ms block is tested at the eight DTMF frequencies. A block holds a digit when the strongest row and
column tones together carry at least ``min_tone_fraction`` of the block's energy, each carries at least a sixth of
it, the twist between them is within ``max_twist_db``, and each beats the runner-up of its group by
``min_group_margin_db``. A digit is reported once, after ``min_blocks`` consecutive blocks agree (2 x 20 ms =
40 ms, the Q.24 minimum), and not again until a block without it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from voiceauth.audio.codecs import l16_encode

__all__ = ["COLS", "DIGITS", "ROWS", "DtmfDetector", "dtmf_pcm16", "dtmf_tone", "goertzel_power"]

ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
DIGITS = ("123A", "456B", "789C", "*0#D")
_B = np.array([1.0])


def goertzel_power(
    block: npt.NDArray[np.float64], freqs: npt.NDArray[np.float64], rate: int
) -> npt.NDArray[np.float64]:
    """Fraction of the block's energy at each frequency (1.0 for a pure tone there), by the Goertzel recurrence."""
    n = block.size
    coeff = 2.0 * np.cos(2.0 * np.pi * freqs / rate)
    power = np.empty_like(freqs)
    for k, a in enumerate(coeff):  # s[n] = x[n] + a s[n-1] - s[n-2], run in C by lfilter
        s = lfilter(_B, [1.0, -a, 1.0], block)
        s1, s2 = s[-1], s[-2]
        power[k] = s1 * s1 + s2 * s2 - a * s1 * s2
    energy = float(np.dot(block, block))
    if energy <= 0.0:
        return np.zeros_like(freqs)
    return 2.0 * power / (n * energy)


def dtmf_tone(digit: str, rate: int = 8000, duration_s: float = 0.1, level: float = 0.25) -> npt.NDArray[np.float32]:
    """A DTMF tone pair for ``digit`` (for tests, the simulator and the mic client)."""
    for r, row in enumerate(DIGITS):
        if digit in row:
            c = row.index(digit)
            t = np.arange(int(rate * duration_s)) / rate
            tone = np.sin(2 * np.pi * ROWS[r] * t) + np.sin(2 * np.pi * COLS[c] * t)
            return (level * tone).astype(np.float32)
    raise ValueError(f"{digit!r} is not a DTMF digit; use 0-9, *, #, A-D")


def dtmf_pcm16(digits: str, rate: int = 8000, on_s: float = 0.1, off_s: float = 0.1) -> bytes:
    """A digit string as 16-bit PCM (tones separated by silence)."""
    gap = np.zeros(int(rate * off_s), dtype=np.float32)
    parts = [np.concatenate([dtmf_tone(d, rate, on_s), gap]) for d in digits]
    return l16_encode(np.concatenate(parts) if parts else gap)


class DtmfDetector:
    """Streaming Goertzel DTMF detector. Not thread-safe; one per call leg."""

    def __init__(
        self,
        sample_rate: int = 8000,
        *,
        block_ms: int = 20,
        min_blocks: int = 2,
        min_tone_fraction: float = 0.35,
        max_twist_db: float = 8.0,
        min_group_margin_db: float = 6.0,
        min_level: float = 1e-3,
    ) -> None:
        self.sample_rate = sample_rate
        self.block = sample_rate * block_ms // 1000
        self.min_blocks = min_blocks
        self.min_tone_fraction = min_tone_fraction
        self.max_twist = 10 ** (max_twist_db / 10)
        self.margin = 10 ** (min_group_margin_db / 10)
        self.min_energy = (min_level**2) * self.block
        self._freqs = np.array(ROWS + COLS)
        # the Goertzel power of every block at once: |sum x[n] e^(-j w n)|^2 is what the recurrence computes
        phase = 2.0 * np.pi * np.outer(np.arange(self.block), self._freqs) / sample_rate
        self._basis = np.concatenate([np.cos(phase), np.sin(phase)], axis=1)  # [block, 16]
        self._pending = np.zeros(0, dtype=np.float64)
        self._current: str | None = None
        self._run = 0
        self._reported = False

    def feed(self, samples: npt.ArrayLike) -> list[str]:
        """Add samples; return the digits whose tones completed the minimum duration in them."""
        x = np.concatenate([self._pending, np.asarray(samples, dtype=np.float64).reshape(-1)])
        n = x.size // self.block
        self._pending = x[n * self.block :]
        found: list[str] = []
        if n == 0:
            return found
        blocks = x[: n * self.block].reshape(n, self.block)
        energy = np.einsum("ij,ij->i", blocks, blocks)
        proj = blocks @ self._basis
        power = proj[:, :8] ** 2 + proj[:, 8:] ** 2
        fractions = 2.0 * power / (self.block * np.maximum(energy, 1e-30)[:, None])
        for i in range(n):
            digit = self._classify(float(energy[i]), fractions[i])
            if digit is not None and digit == self._current:
                self._run += 1
            else:
                self._current, self._run, self._reported = digit, (1 if digit else 0), False
            if digit is not None and self._run >= self.min_blocks and not self._reported:
                self._reported = True
                found.append(digit)
        return found

    def classify(self, block: npt.NDArray[np.float64]) -> str | None:
        """The digit held by one block, or None."""
        energy = float(np.dot(block, block))
        if energy < self.min_energy:
            return None
        return self._classify(energy, goertzel_power(block, self._freqs, self.sample_rate))

    def _classify(self, energy: float, p: npt.NDArray[np.float64]) -> str | None:
        if energy < self.min_energy:
            return None
        rows, cols = p[:4], p[4:]
        r, c = int(np.argmax(rows)), int(np.argmax(cols))
        pr, pc = rows[r], cols[c]
        if pr + pc < self.min_tone_fraction or min(pr, pc) < self.min_tone_fraction / 6:
            return None
        if max(pr, pc) > self.max_twist * min(pr, pc):
            return None
        if np.sort(rows)[-2] * self.margin > pr or np.sort(cols)[-2] * self.margin > pc:
            return None
        return DIGITS[r][c]
