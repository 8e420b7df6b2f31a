"""Console fixtures: a calibration report built from synthetic trials (the statistics are tested in
tests/calibration; here the report is only data for the console to show), and a live uvicorn server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.api.conftest import audio_file, bearer, sample, test_settings
from voiceauth.api import create_app
from voiceauth.calibration.report import build_report
from voiceauth.calibration.stats import Trials
from voiceauth.cli.calibrate import console_payload
from voiceauth.embedding.fake import FakeEngine
from voiceauth.scoring.base import CosineScorer
from voiceauth.store.db import create_db_engine
from voiceauth.store.keys import create_api_key
from voiceauth.store.repo import Store
from voiceauth.store.testing import test_keyring
from voiceauth.watchlist import COSINE_OPERATING_POINTS


def synthetic_trials(n_speakers: int = 12, per_pair: int = 4, seed: int = 5) -> Trials:
    """Genuine scores ~ N(75, 8), impostor ~ N(40, 10) on the 0-100 scale, clipped."""
    rng = np.random.default_rng(seed)
    spk = [f"s{i:02d}" for i in range(n_speakers)]
    scores, enrol, probe = [], [], []
    for a in spk:
        for b in spk:
            for _ in range(per_pair):
                scores.append(float(np.clip(rng.normal(75, 8) if a == b else rng.normal(40, 10), 0, 100)))
                enrol.append(a)
                probe.append(b)
    return Trials.build(scores, enrol, probe)


@pytest.fixture(scope="session")
def calibration_payload() -> dict[str, Any]:
    trials = synthetic_trials()
    report = build_report(trials, target_far=0.01, source="synthetic", scoring_backend="cosine", replicates=200)
    return console_payload(report, trials)


@dataclass
class Server:
    url: str
    keys: dict[str, str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path, calibration_payload: dict[str, Any]) -> Iterator[Server]:
    import uvicorn

    settings = test_settings(tmp_path)
    store = Store(create_db_engine(f"sqlite+pysqlite:///{tmp_path / 'console.db'}"), test_keyring())
    keys: dict[str, str] = {}
    with store.transaction() as tx:
        t = tx.get_or_create_tenant("acme", actor="test")
        for role in ("telephony", "security"):
            keys[role] = create_api_key(tx, t.id, role, actor="test")[1]
        tx.set_threshold(t.id, "high_security", 95.0, actor="test")
    app = create_app(
        settings, engine=FakeEngine(), store=store, scorer=CosineScorer(), operating_points=COSINE_OPERATING_POINTS
    )
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=60) as c:  # a report, an enrolled caller and some decisions to show
        sec, tel = bearer(keys["security"]), bearer(keys["telephony"])
        assert c.post("/v1/console/calibration", json=calibration_payload, headers=sec).status_code == 201
        body = {"external_ref": "cust-1", "consent": {"method": "ivr", "text_version": "v1"}}
        assert c.post("/v1/speakers", json=body, headers=tel).status_code == 201
        for take in ("george_a", "george_b"):
            c.post("/v1/speakers/cust-1/enrollments", files=audio_file(sample(take)), headers=tel)
        for take in ("george_c", "jackson_a"):
            c.post("/v1/speakers/cust-1/verifications", files=audio_file(sample(take)), headers=tel)
    yield Server(url, keys)
    srv.should_exit = True
    thread.join(timeout=10)
    store.dispose()
