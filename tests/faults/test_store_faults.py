"""Store faults through the HTTP API (in process, SQLite): a full disk during enrolment, a corrupt voiceprint row.

Disk full: the SQLite database lives on a small tmpfs volume mounted for the test (root in the container);
where mounting is not allowed the test caps the database file instead (``PRAGMA max_page_count``, the same
SQLITE_FULL error path) and says so. Either way: the enrolment that cannot be written is refused cleanly (503
``store-full``, nothing of it stored), and enrolment works again once space is freed, with no manual repair.

Corrupt voiceprint: a voiceprint whose ciphertext was altered yields a clear error (409
``voiceprint-unreadable``), never a decision; the finding is audited; re-enrolment (replace=true) recovers.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, update

from voiceauth.api import create_app
from voiceauth.config import Settings
from voiceauth.embedding.fake import FakeEngine
from voiceauth.scoring.base import CosineScorer
from voiceauth.store.db import create_db_engine
from voiceauth.store.keys import create_api_key
from voiceauth.store.models import AuditEvent, EnrollmentUtterance, Voiceprint
from voiceauth.store.repo import Store
from voiceauth.store.testing import test_keyring
from voiceauth.watchlist import COSINE_OPERATING_POINTS

SAMPLES = Path(__file__).resolve().parents[2] / "audio_samples"


@dataclass
class App:
    client: TestClient
    store: Store
    tel: dict[str, str]
    sec: dict[str, str]

    def post(self, path: str, name: str, who: dict[str, str], **form: Any) -> Any:
        files = {"audio": ("a.wav", (SAMPLES / f"{name}.wav").read_bytes(), "audio/wav")}
        return self.client.post(f"/v1/speakers/{path}", files=files, data=form, headers=who)

    def utterance_rows(self) -> int:
        return self.store.count_rows(EnrollmentUtterance)


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Any]:
    stores: list[Store] = []

    def make(db_file: Path, *, max_pages: list[int] | None = None) -> Iterator[App]:
        engine = create_db_engine(f"sqlite+pysqlite:///{db_file}")
        if max_pages is not None:  # fallback for "disk full": cap the file at max_pages[0] pages on every checkout
            event.listen(engine, "checkout", lambda conn, *_: conn.execute(f"PRAGMA max_page_count={max_pages[0]}"))
        store = Store(engine, test_keyring())
        stores.append(store)
        with store.transaction() as tx:
            t = tx.get_or_create_tenant("acme", actor="test")
            tx.set_threshold(t.id, "high_security", 95.0, actor="test")
            tel = create_api_key(tx, t.id, "telephony", actor="test")[1]
            sec = create_api_key(tx, t.id, "security", actor="test")[1]
        settings = Settings(
            data_dir=tmp_path / "data",
            offline=True,
            scoring_backend="cosine",
            enroll_min_speech_s=3.0,
            enroll_target_speech_s=8.0,
            replay_check=False,
            antispoof_mode="off",
        )
        app = create_app(
            settings, engine=FakeEngine(), store=store, scorer=CosineScorer(), operating_points=COSINE_OPERATING_POINTS
        )
        with TestClient(app) as client:
            client.post(
                "/v1/speakers",
                json={"external_ref": "cust", "consent": {"method": "ivr", "text_version": "v1"}},
                headers={"Authorization": f"Bearer {tel}"},
            ).raise_for_status()
            yield App(client, store, {"Authorization": f"Bearer {tel}"}, {"Authorization": f"Bearer {sec}"})

    yield make
    for s in stores:
        s.dispose()


@pytest.fixture
def small_volume() -> Iterator[tuple[Path, str]]:
    """A 3 MB tmpfs volume (or, where mounting is not allowed, a plain directory: the caller caps the file)."""
    vol = Path(tempfile.mkdtemp(prefix="voiceauth-full-"))
    cmd = ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(vol)]
    # VOICEAUTH_TEST_NO_MOUNT=1 exercises the fallback where mounting is allowed
    mounted = not os.environ.get("VOICEAUTH_TEST_NO_MOUNT") and subprocess.run(cmd, capture_output=True).returncode == 0
    try:
        yield vol, "tmpfs" if mounted else "page-cap"
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(vol)], check=False)
        subprocess.run(["rm", "-rf", str(vol)], check=False)


def _fill(vol: Path) -> Path:
    filler = vol / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            pass
    return filler


def test_disk_full_during_enrolment_refuses_cleanly_and_recovers(make_app: Any, small_volume: tuple[Path, str]) -> None:
    vol, how = small_volume
    max_pages = None if how == "tmpfs" else [1_000_000]
    gen = make_app(vol / "voiceauth.db", max_pages=max_pages)
    app = next(gen)
    assert app.post("cust/enrollments", "george_a", app.tel).json()["accepted"]
    filler = _fill(vol) if how == "tmpfs" else None
    if max_pages is not None:  # no space beyond the pages in use
        with app.store.engine.connect() as conn:
            max_pages[0] = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())
    refused = []
    for name in ("george_b", "george_c", "george_b", "george_c", "george_b", "george_c"):
        before = app.utterance_rows()
        r = app.post("cust/enrollments", name, app.tel)
        if r.status_code == 200:  # free pages inside the file may still take a row or two
            assert app.utterance_rows() == before + int(r.json()["accepted"])
            continue
        refused.append(r.json())
        assert r.status_code == 503 and r.json()["code"] == "store-full", r.json()
        assert app.utterance_rows() == before  # the refused utterance left nothing behind
    assert refused, f"a full volume ({how}) never refused a write"
    assert app.store.verify_audit_chain().ok
    # space freed: enrolment goes on, no repair needed
    if filler is not None:
        filler.unlink()
    if max_pages is not None:
        max_pages[0] = 1_000_000
    rows = app.utterance_rows()
    r = app.post("cust/enrollments", "george_b", app.tel)
    assert r.status_code == 200 and r.json()["accepted"] and app.utterance_rows() == rows + 1
    assert app.post("cust/verifications", "george_c", app.sec).json()["decision"] == "ACCEPT"
    assert app.store.verify_audit_chain().ok
    print(f"disk full simulated by: {how}; refusals: {len(refused)}")
    for _ in gen:
        pass


def test_corrupt_voiceprint_is_an_audited_error_state_recovered_by_reenrolment(make_app: Any, tmp_path: Path) -> None:
    gen = make_app(tmp_path / "store.db")
    app = next(gen)
    for name in ("george_a", "george_b"):
        assert app.post("cust/enrollments", name, app.tel).json()["accepted"]
    assert app.post("cust/verifications", "george_c", app.sec).json()["decision"] == "ACCEPT"
    with app.store.transaction() as tx:  # flip one ciphertext byte, as a torn write or tampering would
        vp = tx.session.execute(select(Voiceprint)).scalar_one()
        blob = bytearray(vp.embedding)
        blob[-5] ^= 0x40
        tx.session.execute(update(Voiceprint).values(embedding=bytes(blob)))
    for who in (app.sec, app.tel):
        r = app.post("cust/verifications", "george_c", who)
        assert r.status_code == 409 and r.json()["code"] == "voiceprint-unreadable", r.json()
        assert "decision" not in r.json() and "re-enrol" in r.json()["detail"]
    with app.store.transaction() as tx:
        actions = [e.action for e in tx.session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()]
    assert actions.count("voiceprint.unreadable") == 2 and app.store.verify_audit_chain().ok
    # recovery: a re-enrolment replaces the corrupt voiceprint
    r = app.post("cust/enrollments", "george_a", app.tel, replace="true")
    assert r.status_code == 200 and r.json()["accepted"], r.json()
    assert app.post("cust/enrollments", "george_b", app.tel).json()["enrolled"]
    assert app.post("cust/verifications", "george_c", app.sec).json()["decision"] == "ACCEPT"
    assert app.post("cust/verifications", "jackson_a", app.sec).json()["decision"] == "REJECT"
    for _ in gen:
        pass
