"""Liveness test helpers: digit strings said by FSDD speakers, each recording used once per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

#: FSDD takes 0-26 make audio_samples/ (enrolment); answers use takes from here on, each once per test
FIRST_TAKE = 30
RATE = 8000


class Caller:
    """An FSDD speaker who says digit strings, never reusing a recording (the replay check would rightly fire)."""

    def __init__(self, fsdd: Path, speaker: str, first_take: int = FIRST_TAKE) -> None:
        self.fsdd, self.speaker = fsdd, speaker
        self._next = dict.fromkeys("0123456789", first_take)

    def say(self, digits: str, *, gap_s: float = 0.2, lead_s: float = 0.4, tail_s: float = 0.6) -> np.ndarray:
        parts = [np.zeros(int(lead_s * RATE), np.float32)]
        for d in digits:
            take = self._next[d]
            if take >= 50:
                raise AssertionError(f"FSDD has no unused take of {d} by {self.speaker} left in this test")
            self._next[d] = take + 1
            wav, sr = sf.read(self.fsdd / f"{d}_{self.speaker}_{take}.wav", dtype="float32")
            assert sr == RATE
            parts += [wav, np.zeros(int(gap_s * RATE), np.float32)]
        parts.append(np.zeros(int(tail_s * RATE), np.float32))
        return np.concatenate(parts)


@pytest.fixture
def caller(fsdd_dir: Path):  # type: ignore[no-untyped-def]
    """``caller("lucas")`` -> a :class:`Caller` (tests needing FSDD skip when the shared corpus is absent)."""
    return lambda speaker, first_take=FIRST_TAKE: Caller(fsdd_dir, speaker, first_take)


def wrong(digits: str) -> str:
    """Another digit string of the same length (every digit different)."""
    return "".join(str((int(d) + 3) % 10) for d in digits)


class _SeededSecrets:
    """Stands in for :mod:`secrets` in :mod:`voiceauth.liveness.challenges`: seeded challenge digits, so that a test
    says the same strings on every run (the recogniser's accuracy on random strings is the benchmark's business,
    ``python -m benchmarks digits``); challenge ids stay from the CSPRNG."""

    def __init__(self, seed: int) -> None:
        import random
        import secrets

        self._rng = random.Random(seed)
        self.token_urlsafe = secrets.token_urlsafe

    def randbelow(self, n: int) -> int:
        return self._rng.randrange(n)


@pytest.fixture(autouse=True, scope="module")
def seeded_digits() -> Iterator[None]:
    import voiceauth.liveness.challenges as challenges

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(challenges, "secrets", _SeededSecrets(20261203))
        yield
