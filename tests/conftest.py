"""Fixtures shared by the whole suite: data locations, the verified model, the real engine."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.fetch import ensure_model
from voiceauth.config import Settings
from voiceauth.store.repo import Store

# The countermeasure is enforced on every attempt by default (antispoof_mode=enforce); tests that are not about
# anti-spoofing run without it (FakeEngine tests feed arbitrary audio), the ones that are pass antispoof_mode
# explicitly (tests/antispoof, tests/test_*spoof*.py, tests/api/test_spoof.py).
os.environ.setdefault("VOICEAUTH_ANTISPOOF_MODE", "off")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "audio_samples"
SHARED_DATA = ROOT.parent / "shared" / "data"
FSDD = SHARED_DATA / "fsdd"
LIBRISPEECH = SHARED_DATA / "librispeech-cohort"
FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


@pytest.fixture(scope="session")
def fsdd_dir() -> Path:
    if not FSDD.is_dir():
        pytest.skip(f"shared FSDD corpus not found at {FSDD} (it exists on developer machines and in CI)")
    return FSDD


@pytest.fixture(scope="session")
def librispeech_dir() -> Path:
    if not LIBRISPEECH.is_dir():
        pytest.skip(f"shared LibriSpeech cohort not found at {LIBRISPEECH} (it exists on developer machines and in CI)")
    return LIBRISPEECH


def fsdd_string(fsdd: Path, speaker: str, digits: list[int], index: int) -> np.ndarray:
    """Concatenate FSDD recordings ``{d}_{speaker}_{index}.wav`` into one 8 kHz digit string."""
    parts = [sf.read(fsdd / f"{d}_{speaker}_{index}.wav", dtype="float32")[0] for d in digits]
    return np.concatenate(parts).astype(np.float32)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The verified real ECAPA files (fetched by `make test` before pytest runs)."""
    return ensure_model(Settings())


@pytest.fixture(scope="session")
def engine(model_dir: Path):  # type: ignore[no-untyped-def]
    """SpeechBrain's modules in fp32 with the production's telephone-channel adaptation for telephone-band audio."""
    from voiceauth.embedding.ecapa import EcapaEngine
    from voiceauth.embedding.telephone import ADAPTER_DIR

    return EcapaEngine(model_dir, precision="fp32", device="cpu", verify=False, telephone_adapter=ADAPTER_DIR)


@contextmanager
def _lazy_speechbrain_modules_hidden() -> Iterator[None]:
    """Hide SpeechBrain's unloaded lazy placeholder modules from ``sys.modules`` for a while.

    Hypothesis scans ``sys.modules`` (at collection and while generating); SpeechBrain registers lazy placeholders
    there that import when touched and then fail (k2 is not installed) or warn (warnings are errors here).
    Entries imported for real meanwhile are kept; only the placeholders that are still missing come back.
    """
    if "speechbrain" not in sys.modules:
        yield
        return
    from speechbrain.utils.importutils import LazyModule

    hidden = {
        name: mod
        for name, mod in list(sys.modules.items())
        if isinstance(mod, LazyModule) and mod.__dict__.get("lazy_module") is None
    }
    for name in hidden:
        del sys.modules[name]
    try:
        yield
    finally:
        for name, mod in hidden.items():
            sys.modules.setdefault(name, mod)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_collection_modifyitems() -> Iterator[None]:
    with _lazy_speechbrain_modules_hidden():
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
        with _lazy_speechbrain_modules_hidden():
            yield
    else:
        yield


@pytest.fixture()
def no_lazy_speechbrain_modules() -> Iterator[None]:
    """For tests that drive hypothesis indirectly (schemathesis): see ``_lazy_speechbrain_modules_hidden``."""
    with _lazy_speechbrain_modules_hidden():
        yield


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A scratch PostgreSQL database for this test session (dropped at the end); skips if the server is down."""
    from voiceauth.store.testing import PostgresUnavailable, postgres_scratch_database

    try:
        with postgres_scratch_database() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({exc}); CI starts it")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same store tests on both databases: SQLite in a temp dir, a fresh schema of the scratch PostgreSQL."""
    from voiceauth.store.testing import postgres_scratch_schema

    if request.param == "sqlite":
        yield f"sqlite+pysqlite:///{tmp_path / 'store.db'}"
        return
    with postgres_scratch_schema(request.getfixturevalue("pg_database")) as url:
        yield url


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A store on a fresh SQLite file with the test keyring (files may define their own ``store``)."""
    from tests.helpers import sqlite_store

    s = sqlite_store(tmp_path / "store.db")
    yield s
    s.dispose()
