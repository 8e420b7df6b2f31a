"""Fixtures for the anti-spoofing tests: the pinned AASIST weights and one shared countermeasure."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.fetch import ensure_model
from models.registry import AASIST
from voiceauth.antispoof.countermeasure import Countermeasure
from voiceauth.config import Settings


@pytest.fixture(scope="session")
def aasist_dir() -> Path:
    """The verified official AASIST weights (fetched by `voiceauth models fetch`, as `make test` does first)."""
    return ensure_model(Settings(), AASIST)


@pytest.fixture(scope="session")
def countermeasure(aasist_dir: Path) -> Countermeasure:
    """One window per utterance keeps the suite fast; multi-window pooling is covered by the benchmark."""
    return Countermeasure(aasist_dir, max_windows=1)
