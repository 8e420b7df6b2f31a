"""Voiceprint protection and erasure, checked in the database itself (SQLite file and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, text

from tests.api.conftest import Api, sample
from voiceauth.audio.frontend import FrontEnd
from voiceauth.embedding.fake import FakeEngine
from voiceauth.store.models import (
    AuditEvent,
    ConsentRecord,
    EnrollmentUtterance,
    Lockout,
    Speaker,
    VerificationAttempt,
    Voiceprint,
)


def _db_bytes(path: Path) -> bytes:
    parts = [path.read_bytes()]
    for suffix in ("-wal", "-journal"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            parts.append(extra.read_bytes())
    return b"".join(parts)


def test_database_file_holds_no_plaintext_voiceprint(api_factory: Callable[..., Api], tmp_path: Path) -> None:
    db = tmp_path / "plain.db"
    api = api_factory(f"sqlite+pysqlite:///{db}")
    api.register("cust-1")
    assert api.enroll("cust-1", sample("george_a")).json()["enrolled"] is True
    utt = FrontEnd(api.settings).from_bytes(sample("george_a"))
    emb = FakeEngine().embed(utt.speech, utt.sample_rate)  # exactly what was enrolled
    with api.store.transaction() as tx:
        spk = tx.require_speaker(tx.tenant("acme").id, "cust-1")
        vp = tx.voiceprint(spk)
        assert vp is not None
        stored = [vp.embedding, *(u.embedding for u in tx.enrollment_utterances(spk))]
    assert np.allclose(stored[1], emb, atol=1e-6)  # the store does hold this embedding (encrypted)
    raw = _db_bytes(db)
    for vec in (*stored, emb):
        for dtype in ("<f4", "<f8", ">f4"):
            b = np.asarray(vec).astype(dtype).tobytes()
            for start in range(0, len(b) - 16, len(b) // 8):
                assert b[start : start + 16] not in raw, (dtype, start)
    text_forms = {f"{float(v):.6f}" for v in emb[:8]} | {repr(float(v)) for v in emb[:8]}
    assert not any(t.encode() in raw for t in text_forms)


def _biometric_counts(api: Api, speaker_id: int) -> dict[str, int]:
    counts = {}
    with api.store.transaction() as tx:
        for model in (EnrollmentUtterance, Voiceprint, ConsentRecord, Lockout, VerificationAttempt):
            q = select(func.count()).select_from(model).where(model.speaker_id == speaker_id)
            counts[model.__tablename__] = int(tx.session.execute(q).scalar_one())
        counts["speakers"] = int(
            tx.session.execute(select(func.count()).select_from(Speaker).where(Speaker.id == speaker_id)).scalar_one()
        )
    return counts


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_erasure_leaves_no_biometric_rows(
    api_factory: Callable[..., Api], backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    api = api_factory(url)
    api.register("cust-1")
    api.enroll("cust-1", sample("george_a"))
    api.verify("cust-1", sample("jackson_a"))
    api.verify("cust-1", sample("george_b"))
    with api.store.transaction() as tx:
        sid = tx.require_speaker(tx.tenant("acme").id, "cust-1").id
    before = _biometric_counts(api, sid)
    assert before["voiceprints"] == 1 and before["enrollment_utterances"] == 1 and before["verification_attempts"] == 2
    assert api.client.delete("/v1/speakers/cust-1", headers=api.h("acme:telephony")).status_code == 204
    assert all(v == 0 for v in _biometric_counts(api, sid).values())
    with api.store.transaction() as tx:
        for table in ("enrollment_utterances", "voiceprints", "watchlist_entries"):
            assert tx.session.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one() == 0
        erase = tx.session.execute(select(AuditEvent).where(AuditEvent.action == "speaker.erase")).scalars().all()
        assert len(erase) == 1 and erase[0].subject.startswith("p:")
        assert not tx.session.execute(select(AuditEvent).where(AuditEvent.details.contains("cust-1"))).first()
    assert api.store.verify_audit_chain().ok
