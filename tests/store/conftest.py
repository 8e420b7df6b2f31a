"""Store fixtures: the same tests run on SQLite (a file per test) and PostgreSQL (a schema per test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from voiceauth.store.db import create_db_engine
from voiceauth.store.repo import Store
from voiceauth.store.testing import FakeClock, test_keyring


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[Store]:
    s = Store(create_db_engine(db_url), test_keyring(), clock=clock)
    yield s
    s.dispose()
