"""Store fixtures: the same tests run on SQLite (a file per test) and PostgreSQL (a schema per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from voiceauth.store.db import create_db_engine
from voiceauth.store.repo import Store
from voiceauth.store.testing import FakeClock, postgres_scratch_schema, test_keyring


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+pysqlite:///{tmp_path / 'store.db'}"
        return
    with postgres_scratch_schema(request.getfixturevalue("pg_database")) as url:
        yield url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[Store]:
    s = Store(create_db_engine(db_url), test_keyring(), clock=clock)
    yield s
    s.dispose()
