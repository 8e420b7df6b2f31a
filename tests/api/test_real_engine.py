"""The real ECAPA engine through HTTP: a genuine caller is accepted, impostors are rejected; ``voiceauth serve``
starts on embedded defaults with demo keys and answers the README's curl flow."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import ROOT, Api, make_api, sample
from voiceauth.scoring.shipped import COHORT_DIR

pytestmark = pytest.mark.model

#: the production scorer when its shipped cohort is present, else the plain-cosine baseline
BACKEND = "cohort" if (COHORT_DIR / "MANIFEST.json").is_file() else "cosine"


@pytest.fixture
def real_api(engine: Any, tmp_path: Path) -> Iterator[Api]:
    gen = make_api(
        f"sqlite+pysqlite:///{tmp_path / 'real.db'}",
        tmp_path,
        engine=engine,
        scorer=None,
        threshold=None,
        scoring_backend=BACKEND,
        enroll_min_speech_s=8.0,
        enroll_target_speech_s=20.0,
    )
    yield next(gen)
    for _ in gen:
        pass


def test_genuine_accepted_impostors_rejected(real_api: Api) -> None:
    api = real_api
    assert api.register("george").status_code == 201
    first = api.enroll("george", sample("george_a")).json()
    assert first["enrolled"] is False and first["feedback"] == ["OK"]
    second = api.enroll("george", sample("george_b")).json()
    assert second["enrolled"] is True and second["progress"] > first["progress"]
    assert api.verify("george", sample("george_c")).json() == {"decision": "ACCEPT"}
    for impostor in ("jackson_a", "lucas_a", "yweweler_a"):
        assert api.verify("george", sample(impostor)).json() == {"decision": "REJECT"}, impostor
    sec = api.verify("george", sample("george_c"), who="acme:security").json()
    assert sec["decision"] == "ACCEPT" and sec["score"] >= sec["threshold"]


def test_enrolment_poisoning_refused(real_api: Api) -> None:
    api = real_api
    api.register("george")
    api.enroll("george", sample("george_a"))
    r = api.enroll("george", sample("jackson_b")).json()
    assert r["accepted"] is False and r["feedback"] == ["SPEAKER_MISMATCH"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_on_embedded_defaults_prints_demo_keys_and_serves(tmp_path: Path, model_dir: Path) -> None:
    port = _free_port()
    env = {**os.environ, "VOICEAUTH_MODEL_DIR": str(model_dir), "VOICEAUTH_OFFLINE": "true"}
    env["VOICEAUTH_SCORING_BACKEND"] = BACKEND
    cli = [sys.executable, "-c", "from voiceauth.cli import app; app()"]
    proc = subprocess.Popen(
        [*cli, "serve", "--data-dir", str(tmp_path / "d"), "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        while not any("listening" in ln for ln in lines):
            line = proc.stdout.readline()
            assert line, "serve exited early:\n" + "".join(lines)
            lines.append(line)
        keys = dict(re.findall(r"^\s+(\w+) key:\s+(va_\S+)$", "".join(lines), flags=re.M))
        assert set(keys) == {"telephony", "security", "admin"}
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, proc)
        tel = {"Authorization": f"Bearer {keys['telephony']}"}
        with httpx.Client(base_url=base, timeout=60) as c:
            body = {"external_ref": "cust-42", "consent": {"method": "ivr", "text_version": "v1"}}
            assert c.post("/v1/speakers", json=body, headers=tel).status_code == 201
            for take in ("george_a", "george_b"):
                files = {"audio": (f"{take}.wav", sample(take), "audio/wav")}
                r = c.post("/v1/speakers/cust-42/enrollments", files=files, headers=tel)
                assert r.status_code == 200, r.text
            assert r.json()["enrolled"] is True
            files = {"audio": ("george_c.wav", sample("george_c"), "audio/wav")}
            assert c.post("/v1/speakers/cust-42/verifications", files=files, headers=tel).json() == {
                "decision": "ACCEPT"
            }
            assert c.delete("/v1/speakers/cust-42", headers=tel).status_code == 204
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _wait_ready(base: str, proc: subprocess.Popen[str], timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "serve exited before becoming ready"
        try:
            if httpx.get(base + "/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"serve did not become ready within {timeout_s} s")
