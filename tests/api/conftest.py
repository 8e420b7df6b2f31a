"""API test fixtures: an app over a scratch store (SQLite file or a PostgreSQL schema), FakeEngine, a fake clock.

Most tests use :class:`FakeEngine` (fast, deterministic, not a speaker model) with plain-cosine scoring and a
tenant threshold chosen so that, with FakeEngine, another george take is accepted and other speakers are
rejected. Tests that prove speaker behaviour use the real engine (``test_real_engine.py``).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from voiceauth.api import create_app
from voiceauth.config import Settings
from voiceauth.embedding.fake import FakeEngine
from voiceauth.scoring.base import CosineScorer
from voiceauth.store.db import create_db_engine
from voiceauth.store.keys import create_api_key
from voiceauth.store.repo import Store
from voiceauth.store.testing import FakeClock, postgres_scratch_schema, test_keyring
from voiceauth.watchlist import COSINE_OPERATING_POINTS

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "audio_samples"

#: with FakeEngine + cosine scoring: george takes score ~98, other speakers <= ~92 against george_a
FAKE_THRESHOLD = 95.0


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.wav").read_bytes()


def wav_bytes(x: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def audio_file(data: bytes, name: str = "a.wav") -> dict[str, Any]:
    return {"audio": (name, data, "application/octet-stream")}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "offline": True,
        "scoring_backend": "cosine",
        "enroll_min_speech_s": 3.0,
        "enroll_target_speech_s": 8.0,
        "verify_min_speech_s": 3.0,
        "api_rate_limit_burst": 10_000,
        "api_rate_limit_per_minute": 600_000.0,
        "replay_check": False,  # these tests reuse bundled recordings; tests/api/test_spoof.py turns it on
    }
    base.update(overrides)
    return Settings(**base)


test_settings.__test__ = False  # type: ignore[attr-defined]


@dataclass
class Api:
    """A test client with keys of two tenants (``acme`` and ``other``) and the clock it runs on."""

    client: TestClient
    store: Store
    clock: FakeClock
    keys: dict[str, str]  # "acme:telephony" -> key
    settings: Settings

    def h(self, who: str) -> dict[str, str]:
        return bearer(self.keys[who])

    def register(self, ref: str, who: str = "acme:telephony") -> Any:
        body = {"external_ref": ref, "consent": {"method": "ivr", "text_version": "v1"}}
        return self.client.post("/v1/speakers", json=body, headers=self.h(who))

    def enroll(self, ref: str, data: bytes, who: str = "acme:telephony", **form: Any) -> Any:
        return self.client.post(
            f"/v1/speakers/{ref}/enrollments", files=audio_file(data), data=form, headers=self.h(who)
        )

    def verify(self, ref: str, data: bytes, who: str = "acme:telephony", **form: Any) -> Any:
        return self.client.post(
            f"/v1/speakers/{ref}/verifications", files=audio_file(data), data=form, headers=self.h(who)
        )


def make_api(
    url: str,
    tmp_path: Path,
    *,
    engine: Any = None,
    scorer: Any = "cosine",
    threshold: float | None = FAKE_THRESHOLD,
    **overrides: Any,
) -> Iterator[Api]:
    settings = test_settings(tmp_path, **overrides)
    clock = FakeClock()
    store = Store(create_db_engine(url), test_keyring(), clock=clock)
    keys: dict[str, str] = {}
    with store.transaction() as tx:
        for tenant in ("acme", "other"):
            t = tx.get_or_create_tenant(tenant, actor="test")
            for role in ("telephony", "security", "admin"):
                keys[f"{tenant}:{role}"] = create_api_key(tx, t.id, role, actor="test")[1]
            if threshold is not None:
                tx.set_threshold(t.id, "high_security", threshold, actor="test")
    kwargs: dict[str, Any] = {}
    if scorer == "cosine":
        kwargs = {"scorer": CosineScorer(), "operating_points": COSINE_OPERATING_POINTS}
    app = create_app(settings, engine=engine or FakeEngine(), store=store, clock=clock, **kwargs)
    with TestClient(app) as client:
        yield Api(client, store, clock, keys, settings)
    store.dispose()


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """A fresh schema in the session's scratch PostgreSQL database."""
    with postgres_scratch_schema(pg_database, prefix="api") as url:
        yield url


@pytest.fixture
def api_factory(tmp_path: Path) -> Callable[..., Api]:
    """``api_factory(**settings_overrides)`` -> an Api on a fresh SQLite file (closed at teardown)."""
    gens: list[Iterator[Api]] = []

    def factory(url: str | None = None, **kw: Any) -> Api:
        n = len(gens)
        gen = make_api(url or f"sqlite+pysqlite:///{tmp_path / f'api{n}.db'}", tmp_path / f"a{n}", **kw)
        gens.append(gen)
        return next(gen)

    yield factory  # type: ignore[misc]
    for g in gens:
        for _ in g:
            pass


@pytest.fixture
def api(api_factory: Callable[..., Api]) -> Api:
    return api_factory()
