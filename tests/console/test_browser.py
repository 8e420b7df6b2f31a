"""The console in a real browser: headless Chromium (Debian's ``chromium`` package) driven by Playwright.

A uvicorn server on 127.0.0.1 (a free port) serves the app over a scratch SQLite store with FakeEngine; a
calibration report is published through the API. The test logs in with a telephony key (refused), then with a
security key, waits for the DET curve to load, changes an operating point and finds the change in the audit view.
A screenshot is saved to ``test-output/console/console.png``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import bearer
from tests.console.conftest import Server

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
