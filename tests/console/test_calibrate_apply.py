"""``voiceauth calibrate --apply``: the threshold is set through the HTTP API of a running server, audited.

FakeEngine stands in for the model (the real-speech report is tested in tests/calibration); the folder is the
bundled samples, three takes of six speakers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.api.conftest import SAMPLES, bearer
from tests.console.conftest import Server
from voiceauth.config import Settings
from voiceauth.embedding.fake import FakeEngine


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    root = tmp_path / "speakers"
    for f in sorted(SAMPLES.glob("*_[abc].wav")):
        spk = f.stem.rsplit("_", 1)[0]
        (root / spk).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, root / spk / f.name)
    return root


def test_calibrate_apply_sets_the_threshold_through_the_api(
    server: Server, sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voiceauth.cli import app

    settings = Settings(offline=True, scoring_backend="cosine", data_dir=tmp_path / "data")
    monkeypatch.setattr("voiceauth.cli.calibrate.get_settings", lambda: settings)
    monkeypatch.setattr("voiceauth.embedding.factory.create_engine", lambda _s: FakeEngine())
    base = ["calibrate", str(sample_dir), "--target-far", "0.05", "--replicates", "100", "--api-url", server.url]
    out = tmp_path / "report"
    sec = server.keys["security"]

    # the key's tenant must be the one named; a telephony key cannot read thresholds
    res = CliRunner().invoke(app, [*base, "--out", str(out), "--apply", "--tenant", "other", "--api-key", sec])
    assert res.exit_code == 2 and "belongs to tenant 'acme'" in res.output
    tel = server.keys["telephony"]
    res = CliRunner().invoke(app, [*base, "--out", str(out), "--apply", "--tenant", "acme", "--api-key", tel])
    assert res.exit_code == 2 and "403" in res.output

    res = CliRunner().invoke(
        app, [*base, "--out", str(out), "--apply", "--tenant", "acme", "--operating-point", "high_security",
              "--api-key", sec],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads((out / "report.json").read_text())
    assert data["target_trials"] == 18 and data["nontarget_trials"] == 135
    # the tenant's thresholds at the time were measured in the report
    assert data["current_thresholds"]["high_security"]["threshold"] == 95.0
    h = bearer(sec)
    th = httpx.get(server.url + "/v1/thresholds", headers=h).json()
    assert th["overrides"]["high_security"] == pytest.approx(data["threshold"], abs=1e-4)
    audit = httpx.get(server.url + "/v1/console/audit", headers=h).json()
    sets = [e for e in audit if e["action"] == "threshold.set" and e["actor"].endswith(":security")]
    assert sets and sets[0]["details"]["old"] == 95.0
    assert sets[0]["details"]["new"] == pytest.approx(data["threshold"], abs=1e-4)
    assert any(e["action"] == "calibration.publish" for e in audit)
    cal = httpx.get(server.url + "/v1/console/calibration", headers=h).json()
    assert cal["report"]["threshold"] == data["threshold"]


def test_report_kpi_asks_a_running_service(server: Server) -> None:
    from voiceauth.cli import app

    args = ["report", "kpi", "--since", "1d", "--api-url", server.url, "--api-key", server.keys["security"]]
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    k = json.loads(res.output)["acme"]
    assert k["verifications"] == {"ACCEPT": 1, "REJECT": 1} and k["verification_success_rate"] == 0.5
    assert k["registered"] == 1 and k["enrolment_rate"] == 1.0
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0 and "Verification success rate" in res.output and "50.0%" in res.output
    res = CliRunner().invoke(app, [*args[:-1], server.keys["telephony"]])
    assert res.exit_code == 2 and "403" in res.output
