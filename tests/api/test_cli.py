"""The service commands: keys create (last line is the key), audit verify (tamper detected), purge-expired,
rotate-data-key while an app serves (no downtime)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from tests.api.conftest import audio_file, bearer, sample, test_settings
from voiceauth.api import create_app
from voiceauth.cli import app as cli
from voiceauth.embedding.fake import FakeEngine
from voiceauth.scoring.base import CosineScorer
from voiceauth.store.db import DB_FILE_NAME
from voiceauth.store.models import EnrollmentUtterance, Voiceprint
from voiceauth.watchlist import COSINE_OPERATING_POINTS

runner = CliRunner()


def _key(data_dir: Path, tenant: str, role: str) -> str:
    r = runner.invoke(cli, ["keys", "create", "--tenant", tenant, "--role", role, "--data-dir", str(data_dir)])
    assert r.exit_code == 0, r.output
    return r.stdout.strip().splitlines()[-1]


def test_keys_create_prints_key_last_and_creates_tenant(tmp_path: Path) -> None:
    data = tmp_path / "d"
    key = _key(data, "brand-new", "telephony")
    assert key.startswith("va_")
    bad = runner.invoke(cli, ["keys", "create", "--tenant", "t", "--role", "root", "--data-dir", str(data)])
    assert bad.exit_code == 2 and "telephony, security, admin" in bad.output
    app = create_app(test_settings(tmp_path, data_dir=data), engine=FakeEngine(), scorer=CosineScorer())
    with TestClient(app) as c:
        assert c.get("/v1/tenant", headers=bearer(key)).json()["name"] == "brand-new"
    listed = runner.invoke(cli, ["keys", "list", "--tenant", "brand-new", "--data-dir", str(data)])
    assert "telephony" in listed.stdout and key not in listed.stdout


def test_audit_verify_detects_one_tampered_row(tmp_path: Path) -> None:
    data = tmp_path / "d"
    key = _key(data, "acme", "telephony")
    settings = test_settings(tmp_path, data_dir=data)
    app = create_app(settings, engine=FakeEngine(), scorer=CosineScorer(), operating_points=COSINE_OPERATING_POINTS)
    with TestClient(app) as c:
        body = {"external_ref": "cust-1", "consent": {"method": "ivr", "text_version": "v1"}}
        assert c.post("/v1/speakers", json=body, headers=bearer(key)).status_code == 201
        c.post("/v1/speakers/cust-1/enrollments", files=audio_file(sample("george_a")), headers=bearer(key))
        c.post("/v1/speakers/cust-1/verifications", files=audio_file(sample("george_b")), headers=bearer(key))
    ok = runner.invoke(cli, ["audit", "verify", "--data-dir", str(data)])
    assert ok.exit_code == 0 and "audit chain OK" in ok.stdout
    with sqlite3.connect(data / DB_FILE_NAME) as db:
        (seq,) = db.execute("SELECT seq FROM audit_events WHERE action = 'verify'").fetchone()
        db.execute("UPDATE audit_events SET outcome = 'ACCEPT_FORGED' WHERE seq = ?", (seq,))
    broken = runner.invoke(cli, ["audit", "verify", "--data-dir", str(data)])
    assert broken.exit_code == 1 and f"event {seq}" in broken.output and "BROKEN" in broken.output
    # removing a row (instead of editing it) is detected too
    with sqlite3.connect(data / DB_FILE_NAME) as db:
        db.execute("UPDATE audit_events SET outcome = 'ACCEPT' WHERE seq = ?", (seq,))
    assert runner.invoke(cli, ["audit", "verify", "--data-dir", str(data)]).exit_code == 0
    with sqlite3.connect(data / DB_FILE_NAME) as db:
        db.execute("DELETE FROM audit_events WHERE seq = 2")
    assert runner.invoke(cli, ["audit", "verify", "--data-dir", str(data)]).exit_code == 1


def test_purge_expired_command(tmp_path: Path) -> None:
    data = tmp_path / "d"
    r = runner.invoke(cli, ["purge-expired", "--data-dir", str(data)])
    assert r.exit_code == 0 and "purged 0 expired voiceprints" in r.stdout


def test_rotate_data_key_while_serving(tmp_path: Path) -> None:
    data = tmp_path / "d"
    key = _key(data, "acme", "telephony")
    settings = test_settings(tmp_path, data_dir=data, api_key_reload_s=0.1)
    app = create_app(settings, engine=FakeEngine(), scorer=CosineScorer(), operating_points=COSINE_OPERATING_POINTS)
    with TestClient(app) as c:
        store = app.state.services.store
        old_id = store.keyring.active_id
        body = {"external_ref": "cust-1", "consent": {"method": "ivr", "text_version": "v1"}}
        c.post("/v1/speakers", json=body, headers=bearer(key))
        r = c.post("/v1/speakers/cust-1/enrollments", files=audio_file(sample("george_a")), headers=bearer(key))
        assert r.json()["enrolled"] is True
        rot = runner.invoke(cli, ["keys", "rotate-data-key", "--data-dir", str(data), "--grace-s", "1"])
        assert rot.exit_code == 0, rot.output
        assert "re-encrypted 2 rows" in rot.stdout
        assert store.keyring.active_id != old_id  # the running app picked up the new key file
        with store.transaction() as tx:
            ids = set(tx.session.execute(select(Voiceprint.key_id)).scalars())
            ids |= set(tx.session.execute(select(EnrollmentUtterance.key_id)).scalars())
        assert ids == {store.keyring.active_id}
        v = c.post("/v1/speakers/cust-1/verifications", files=audio_file(sample("george_a")), headers=bearer(key))
        assert v.status_code == 200 and v.json() == {"decision": "ACCEPT"}
