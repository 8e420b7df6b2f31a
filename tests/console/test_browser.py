"""The console in a real browser: headless Chromium (Debian's ``chromium`` package) driven by Playwright.

A uvicorn server on 127.0.0.1 (a free port) serves the app over a scratch SQLite store with FakeEngine; a
calibration report is published through the API. The test logs in with a telephony key (refused), then with a
security key, waits for the DET curve to load, changes an operating point and finds the change in the audit view.
A screenshot is saved to ``test-output/console/console.png``.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import audio_file, bearer, sample, test_settings
from voiceauth.api import create_app
from voiceauth.embedding.fake import FakeEngine
from voiceauth.scoring.base import CosineScorer
from voiceauth.store.db import create_db_engine
from voiceauth.store.keys import create_api_key
from voiceauth.store.repo import Store
from voiceauth.store.testing import test_keyring
from voiceauth.watchlist import COSINE_OPERATING_POINTS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "console"


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


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium chromium-driver; make setup does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) is not installed")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def test_console_login_det_curve_threshold_change_in_audit(server: Server, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.set_default_timeout(30_000)
    page.goto(server.url + "/console")

    # a telephony key is refused: the error is shown and nothing of the console appears
    page.fill("#key", server.keys["telephony"])
    page.click("#login-btn")
    page.wait_for_function("document.getElementById('login-error').textContent.length > 0")
    assert "telephony key may not" in page.text_content("#login-error")
    assert page.is_hidden("#app")
    assert page.evaluate("sessionStorage.getItem('voiceauth.key')") is None

    # a security key logs in; the DET curve of the published report loads
    page.fill("#key", server.keys["security"])
    page.click("#login-btn")
    page.wait_for_selector("#app", state="visible")
    page.wait_for_function("document.getElementById('det').naturalWidth > 0")
    assert page.evaluate("document.getElementById('det').naturalWidth") >= 500
    assert "impostor trials" in page.text_content("#cal-summary")
    assert "tenant acme" in page.text_content("#who")
    page.wait_for_function("document.getElementById('chain').textContent.includes('chain OK')")
    assert "ACCEPT" in page.text_content("#dec-body") and "REJECT" in page.text_content("#dec-body")

    # change the high_security threshold and choose it as the operating point in use
    page.fill("#thr-high_security", "81.5")
    page.click("#save-high_security")
    page.wait_for_function("document.getElementById('audit-body').textContent.includes('\"new\":81.5')")
    page.select_option("#op-select", "high_security")
    page.click("#op-save")
    page.wait_for_function("document.getElementById('audit-body').textContent.includes('operating_point.set')")
    audit = page.text_content("#audit-body")
    assert "threshold.set" in audit and '"old":95' in audit
    assert page.input_value("#thr-high_security") == "81.50"
    assert "high_security (in use)" in page.text_content("#ops-body")
    page.click("#chain-btn")
    page.wait_for_function("document.getElementById('chain').textContent.includes('chain OK')")

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "console.png"), full_page=True)

    # the change is real: the API agrees
    r = httpx.get(server.url + "/v1/thresholds", headers=bearer(server.keys["security"]))
    assert r.json()["overrides"]["high_security"] == 81.5 and r.json()["operating_point"] == "high_security"
