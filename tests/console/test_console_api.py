"""The /v1/console API: security keys only, reports, measured operating points, decisions, lockouts, KPIs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.api.conftest import Api, api, api_factory, sample  # noqa: F401  (fixtures)
from voiceauth.cli import app as cli_app
from voiceauth.cli.report import parse_since
from voiceauth.store.models import Speaker, StoreMeta

ROUTES = [
    ("GET", "/v1/console/overview"),
    ("GET", "/v1/console/calibration"),
    ("GET", "/v1/console/decisions"),
    ("GET", "/v1/console/lockouts"),
    ("GET", "/v1/console/kpis"),
    ("GET", "/v1/console/audit"),
]


def test_console_page_is_served_without_data(api: Api) -> None:  # noqa: F811
    r = api.client.get("/console")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "sessionStorage" in r.text and "Authorization" in r.text
    assert "<script src=" not in r.text  # no external scripts


@pytest.mark.parametrize("method,path", ROUTES)
def test_only_security_keys_reach_the_console_api(api: Api, method: str, path: str) -> None:  # noqa: F811
    assert api.client.request(method, path).status_code == 401
    for role in ("telephony", "admin"):
        r = api.client.request(method, path, headers=api.h(f"acme:{role}"))
        assert r.status_code == 403, (role, r.text)
        assert "needs a security key" in r.json()["detail"]
    assert api.client.request(method, path, headers=api.h("acme:security")).status_code in (200, 404)


def test_publish_report_and_measure_operating_points(api: Api, calibration_payload: dict[str, Any]) -> None:  # noqa: F811
    h = api.h("acme:security")
    assert api.client.get("/v1/console/calibration", headers=h).status_code == 404
    r = api.client.post("/v1/console/calibration", json=calibration_payload, headers=h)
    assert r.status_code == 201, r.text
    got = api.client.get("/v1/console/calibration", headers=h).json()
    assert got["det_png"].startswith("data:image/png;base64,iVBOR")
    assert got["report"]["threshold"] == calibration_payload["report"]["threshold"]
    # the other tenant does not see it
    assert api.client.get("/v1/console/calibration", headers=api.h("other:security")).status_code == 404
    # measured FAR/FRR at each effective threshold, recomputed from the published trials
    o = api.client.get("/v1/console/overview", headers=h).json()
    assert o["tenant"] == "acme"
    hs = o["measured"]["high_security"]
    t = calibration_payload["trials"]
    thr = o["thresholds"]["effective"]["high_security"]
    non = [s for s, a, b in zip(t["scores"], t["enrol"], t["probe"], strict=True) if a != b]
    tar = [s for s, a, b in zip(t["scores"], t["enrol"], t["probe"], strict=True) if a == b]
    assert hs["far"] == pytest.approx(sum(s >= thr for s in non) / len(non))
    assert hs["frr"] == pytest.approx(sum(s < thr for s in tar) / len(tar))
    assert hs["far_ci"][0] <= hs["far"] <= hs["far_ci"][1]
    # speaker names never reach the server; the publication is audited
    with api.store.transaction() as tx:
        stored = tx.session.get(StoreMeta, "calibration.report.1")
        assert stored is not None and "s00" not in stored.value
    audit = api.client.get("/v1/console/audit", headers=h).json()
    assert any(e["action"] == "calibration.publish" for e in audit)


def test_publish_refuses_what_is_not_a_report(api: Api, calibration_payload: dict[str, Any]) -> None:  # noqa: F811
    h = api.h("acme:security")
    bad = dict(calibration_payload, det_png="bm90IGEgcG5n")
    assert api.client.post("/v1/console/calibration", json=bad, headers=h).status_code == 400
    bad = dict(calibration_payload, report={"kind": "other"})
    assert api.client.post("/v1/console/calibration", json=bad, headers=h).status_code == 400
    for trials in (
        {"scores": [1.0, 2.0, 3.0], "enrol": [0, 0, 1], "probe": [0, 1]},  # lengths differ
        {"scores": [1.0, 2.0], "enrol": [0, 1], "probe": [0, 1]},  # no impostor trial
    ):
        bad = dict(calibration_payload, trials=trials)
        assert api.client.post("/v1/console/calibration", json=bad, headers=h).status_code == 400


def test_decisions_lockouts_and_kpis(api: Api) -> None:  # noqa: F811
    h = api.h("acme:security")
    assert api.register("cust-1").status_code == 201
    for take in ("george_a", "george_b"):
        assert api.enroll("cust-1", sample(take)).status_code in (200, 201)
    assert api.register("cust-2").status_code == 201  # registered, never enrolled
    assert api.verify("cust-1", sample("george_c")).json()["decision"] == "ACCEPT"
    for _ in range(2):
        assert api.verify("cust-1", sample("jackson_a")).json()["decision"] == "REJECT"
    dec = api.client.get("/v1/console/decisions", headers=h).json()
    assert [d["decision"] for d in dec] == ["REJECT", "REJECT", "ACCEPT"]
    assert all(d["speaker"] == "cust-1" and d["score"] is not None and d["threshold"] == 95.0 for d in dec)
    assert dec[2]["score"] >= 95.0 > dec[0]["score"]

    locks = api.client.get("/v1/console/lockouts", headers=h).json()
    assert locks == [
        {"speaker": "cust-1", "failures": 2, "locked_until": None, "locked": False, "voice_disabled": False}
    ]
    assert api.client.post("/v1/console/complaints", json={"speaker": "cust-1"}, headers=h).status_code == 201
    assert api.client.post("/v1/console/complaints", json={"speaker": "nobody"}, headers=h).status_code == 404

    k = api.client.get("/v1/console/kpis", headers=h).json()
    assert k["registered"] == 2 and k["enrolled"] == 1 and k["enrolment_rate"] == 0.5
    assert k["verifications"] == {"ACCEPT": 1, "REJECT": 2}
    assert k["verification_success_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert k["avg_speech_s_to_decision"] > 3.0
    assert k["false_reject_complaints"] == 1 and k["complaints_per_100_rejects"] == 50.0
    assert k["fallback_to_pin_rate"] is None  # no IVR calls in this app

    assert api.client.delete("/v1/console/lockouts/cust-1", headers=h).json() == {"speaker": "cust-1", "cleared": True}
    assert api.client.get("/v1/console/lockouts", headers=h).json() == []
    actions = [e["action"] for e in api.client.get("/v1/console/audit", headers=h).json()]
    assert "lockout.clear" in actions and "complaint.false_reject" in actions and "decisions.read" in actions
    # other tenant sees none of it
    assert api.client.get("/v1/console/decisions", headers=api.h("other:security")).json() == []


def test_clearing_a_lockout_reenables_voice(api: Api) -> None:  # noqa: F811
    api.register("cust-9")
    with api.store.transaction() as tx:
        spk = tx.require_speaker(1, "cust-9")
        tx.set_voice_disabled(spk, True, actor="lockout")
    h = api.h("acme:security")
    assert api.client.get("/v1/console/lockouts", headers=h).json()[0]["voice_disabled"] is True
    api.client.delete("/v1/console/lockouts/cust-9", headers=h)
    with api.store.transaction() as tx:
        row = tx.session.query(Speaker).filter_by(external_ref="cust-9").one()
        assert row.voice_disabled is False


def test_report_kpi_cli_reads_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from voiceauth.config import Settings
    from voiceauth.store.repo import open_store

    settings = Settings(data_dir=tmp_path / "data", offline=True)
    monkeypatch.setattr("voiceauth.cli._data.get_settings", lambda: settings)
    store = open_store(settings)
    with store.transaction() as tx:
        t = tx.get_or_create_tenant("acme", actor="test")
        tx.create_speaker(t.id, "c1", actor="test")
        tx.audit("complaint.false_reject", actor="test", tenant_id=t.id)
    store.dispose()
    res = CliRunner().invoke(
        cli_app, ["report", "kpi", "--since", "7d", "--data-dir", str(tmp_path / "data"), "--json"]
    )
    assert res.exit_code == 0, res.output
    k = json.loads(res.output)["acme"]
    assert k["registered"] == 1 and k["enrolled"] == 0 and k["enrolment_rate"] == 0.0
    assert k["false_reject_complaints"] == 1 and k["verification_success_rate"] is None
    res = CliRunner().invoke(cli_app, ["report", "kpi", "--since", "7d", "--data-dir", str(tmp_path / "data")])
    assert res.exit_code == 0 and "Enrolment rate" in res.output and "Fallback-to-PIN" in res.output
    res = CliRunner().invoke(cli_app, ["report", "kpi", "--since", "last tuesday", "--data-dir", str(tmp_path)])
    assert res.exit_code == 2 and "7d" in res.output


def test_parse_since() -> None:
    import datetime as dt

    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert parse_since("7d", now) == now - dt.timedelta(days=7)
    assert parse_since("12h", now) == now - dt.timedelta(hours=12)
    assert parse_since("2026-02-01", now) == dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
