"""Small builders shared by the enrolment and verification tests (fake-engine embeddings, quality records)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voiceauth.audio.types import Quality
from voiceauth.store.db import create_db_engine
from voiceauth.store.repo import Clock, Store
from voiceauth.store.testing import FakeClock, test_keyring

__all__ = ["q", "sqlite_store", "voice"]


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
