"""Store fixtures: the same tests run on SQLite (a file per test) and PostgreSQL (a schema per test)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from voiceauth.store.db import create_db_engine
from voiceauth.store.repo import Store
from voiceauth.store.testing import FakeClock, PostgresUnavailable, postgres_scratch_database, test_keyring


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A scratch database for this test session (dropped at the end); skips if the server is unreachable."""
    try:
        with postgres_scratch_database() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({exc}); CI starts it")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+pysqlite:///{tmp_path / 'store.db'}"
        return
    base = request.getfixturevalue("pg_database")
    schema = f"t_{secrets.token_hex(5)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield base + ("&" if "?" in base else "?") + f"options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[Store]:
    s = Store(create_db_engine(db_url), test_keyring(), clock=clock)
    yield s
    s.dispose()
