"""Small builders shared by the enrolment and verification tests (fake-engine embeddings, quality records)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voiceauth.audio.types import Quality
from voiceauth.store.db import create_db_engine
from voiceauth.store.repo import Clock, Store
from voiceauth.store.testing import FakeClock, test_keyring

__all__ = ["MemoEngine", "q", "sqlite_store", "voice"]


def q(speech_s: float = 3.0, codes: tuple[str, ...] = ("OK",)) -> Quality:
    """A clean utterance's quality record with ``speech_s`` of net speech."""
    return Quality(net_speech_s=speech_s, snr_db=30.0, clipping_ratio=0.0, level_dbfs=-20.0, codes=codes)


def voice(base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Another utterance of the speaker whose voice is ``base``: the unit vector of ``base`` plus small noise."""
    v = base + 0.15 * rng.standard_normal(base.size)
    return (v / np.linalg.norm(v)).astype(np.float32)


def sqlite_store(path: Path, clock: Clock | None = None) -> Store:
    """A store on a fresh SQLite file with the test keyring (call ``dispose`` when done)."""
    return Store(create_db_engine(f"sqlite+pysqlite:///{path}"), test_keyring(), clock=clock or FakeClock())


class MemoEngine:
    """Wraps the real engine and embeds each distinct clip once per test module (the real model is slow)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.memo, self.dim = inner, {}, inner.dim
        self.precision, self.device = inner.precision, inner.device

    def embed(self, wav: np.ndarray, sample_rate: int, *, telephone: bool = False) -> np.ndarray:
        key = (hashlib.sha256(np.ascontiguousarray(wav).tobytes()).hexdigest(), sample_rate, telephone)
        if key not in self.memo:
            self.memo[key] = self.inner.embed(wav, sample_rate, telephone=telephone)
        out: np.ndarray = self.memo[key]
        return out

    def embed_batch(self, wavs: Sequence[np.ndarray], sample_rate: int, *, telephone: bool = False) -> np.ndarray:
        return np.stack([self.embed(w, sample_rate, telephone=telephone) for w in wavs])
