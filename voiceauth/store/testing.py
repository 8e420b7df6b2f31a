"""Test helpers for code built on the store: a settable clock, Utterances from samples, scratch PostgreSQL.

Used by this project's tests (store, enrolment, verification, pipeline, API); not imported by the service.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from voiceauth.audio.types import Quality, Utterance
from voiceauth.embedding.base import FloatArray
from voiceauth.store.crypto import Keyring

__all__ = [
    "DEFAULT_PG_URL",
    "FakeClock",
    "PostgresUnavailable",
    "make_utterance",
    "postgres_scratch_database",
    "test_keyring",
]

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class FakeClock:
    """A callable clock that only moves when told to (aware UTC)."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.now = start or dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float = 0.0, *, days: float = 0.0) -> None:
        self.now += dt.timedelta(seconds=seconds, days=days)


def test_keyring(seed: int = 7) -> Keyring:
    """A deterministic keyring (tests only)."""
    return Keyring([np.random.default_rng(seed).bytes(32)])


test_keyring.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def make_utterance(
    samples: FloatArray,
    sample_rate: int,
    *,
    narrowband: bool | None = None,
    net_speech_s: float | None = None,
    codes: tuple[str, ...] = ("OK",),
    wide: bool = False,
) -> Utterance:
    """An Utterance straight from samples (resampled to 16 kHz; all of it counted as speech unless told).

    ``wide``: also as the full band (``speech_wide``, the same samples), as the front end keeps wideband input."""
    from scipy.signal import resample_poly

    x = np.asarray(samples, dtype=np.float32)
    duration = x.size / sample_rate
    if sample_rate != 16000:
        g = np.gcd(16000, sample_rate)
        x = resample_poly(x, 16000 // g, sample_rate // g).astype(np.float32)
    speech_s = duration if net_speech_s is None else net_speech_s
    return Utterance(
        speech=x,
        sample_rate=16000,
        duration_s=duration,
        narrowband=sample_rate <= 8000 if narrowband is None else narrowband,
        quality=Quality(net_speech_s=speech_s, snr_db=30.0, clipping_ratio=0.0, level_dbfs=-20.0, codes=codes),
        speech_wide=x if wide else None,
    )


class PostgresUnavailable(RuntimeError):
    pass


@contextmanager
def postgres_scratch_database(admin_url: str = DEFAULT_PG_URL) -> Iterator[str]:
    """Create a uniquely named database on the server of ``admin_url``, yield its URL, drop it afterwards.

    Raises :class:`PostgresUnavailable` when the server cannot be reached (tests skip on it).
    """
    last: Exception | None = None
    admin = None
    for user in (make_url(admin_url).username or "postgres", "root"):
        url = make_url(admin_url).set(username=user)
        eng = create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        try:
            with eng.connect() as c:
                c.execute(text("SELECT 1"))
            admin = eng
            break
        except OperationalError as exc:
            last = exc
            eng.dispose()
    if admin is None:
        raise PostgresUnavailable(f"PostgreSQL at {make_url(admin_url).host}:{make_url(admin_url).port}: {last}")
    name = f"voiceauth_scratch_{secrets.token_hex(6)}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin.url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def postgres_scratch_schema(database_url: str, prefix: str = "t") -> Iterator[str]:
    """Create a uniquely named schema in ``database_url``; yield a URL whose search_path is that schema; drop it."""
    schema = f"{prefix}_{secrets.token_hex(5)}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield database_url + ("&" if "?" in database_url else "?") + f"options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
