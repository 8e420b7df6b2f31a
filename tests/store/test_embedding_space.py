"""Embedding spaces: a telephone-band embedding made by another network than the running engine's is never scored.

Voiceprints made before the telephone adaptation (or with it switched off) verify as EXPIRED until re-enrolled,
their enrolment restarts on the next utterance, old watchlist entries are not searched, and the service refuses to
start with a cohort of another network. SQLite and PostgreSQL (``db_url``). Synthetic unit vectors: only the store
and the decision logic are under test here, not the network.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from enrollment.session import Enroller
from tests.store.legacy import enrolled_at_revision
from voiceauth.audio.types import Quality
from voiceauth.config import Settings
from voiceauth.embedding.fake import FakeEngine
from voiceauth.embedding.space import RELEASED_SPACE, telephone_space
from voiceauth.errors import ConfigError
from voiceauth.pipeline import Pipeline, check_cohort_space
from voiceauth.scoring.base import CosineScorer
from voiceauth.scoring.shipped import COHORT_DIR, cohort_space
from voiceauth.store.db import create_db_engine
from voiceauth.store.models import AuditEvent, Voiceprint
from voiceauth.store.repo import Store
from voiceauth.store.testing import FakeClock, test_keyring
from voiceauth.verification import Decision, Verifier
from voiceauth.watchlist import COSINE_OPERATING_POINTS

Q = Quality(net_speech_s=5.0, snr_db=30.0, clipping_ratio=0.0, level_dbfs=-20.0)
ADAPTED = "tel-0123abcd"


def voice(seed: int, base: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = np.random.default_rng(base).standard_normal(192) + 0.15 * rng.standard_normal(192)
    return (v / np.linalg.norm(v)).astype(np.float32)


def enroller(store: Store, space: str) -> Enroller:
    return Enroller(store, CosineScorer(), COSINE_OPERATING_POINTS, space=space)


def verifier(store: Store, space: str) -> Verifier:
    return Verifier(store, CosineScorer(), COSINE_OPERATING_POINTS, space=space)


def enrol(store: Store, space: str, ref: str = "alice") -> None:
    e = enroller(store, space)
    for i in range(2):
        assert e.enroll("acme", ref, voice(i + 1), Q, narrowband=True).accepted


def test_a_voiceprint_of_another_network_is_expired_until_re_enrolled(store: Store) -> None:
    enroller(store, RELEASED_SPACE).register(
        "acme", "alice", consent_method="ivr", consent_text_version="v1", actor="t"
    )
    enrol(store, RELEASED_SPACE)
    assert verifier(store, RELEASED_SPACE).verify(
        "acme", "alice", voice(9), net_speech_s=5, narrowband=True
    ).decision == (Decision.ACCEPT)

    # the service now runs the telephone-adapted network: the old voiceprint cannot be scored
    v = verifier(store, ADAPTED)
    r = v.verify("acme", "alice", voice(9), net_speech_s=5, narrowband=True)
    assert r.decision == Decision.EXPIRED and r.score is None
    with store.transaction() as tx:
        ev = tx.session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).scalar_one()
        assert ev.action == "verify" and ev.outcome == "EXPIRED"
        assert json.loads(ev.details)["reason"] == "voiceprint-from-another-embedding-network"
    e = enroller(store, ADAPTED)
    status = e.status("acme", "alice")
    assert not status.enrolled and status.utterances == 0 and status.progress == 0.0

    # the next utterance starts the enrolment over in the new space; nothing of the old one is mixed in
    first = e.enroll("acme", "alice", voice(21), Q, narrowband=True)
    assert first.accepted and first.utterances == 1 and first.consistency_score is None
    with store.transaction() as tx:
        spk = tx.require_speaker(tx.tenant("acme").id, "alice")
        assert [u.space for u in tx.enrollment_utterances(spk)] == [ADAPTED]
        ev = tx.session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).scalar_one()
        assert ev.action == "enroll.accept" and json.loads(ev.details)["restarted"] == "embedding-network-changed"
    assert e.enroll("acme", "alice", voice(22), Q, narrowband=True).enrolled
    with store.transaction() as tx:
        vp = tx.voiceprint(tx.require_speaker(tx.tenant("acme").id, "alice"))
        assert vp is not None and vp.space == ADAPTED and vp.n_utterances == 2
    assert v.verify("acme", "alice", voice(9), net_speech_s=5, narrowband=True).decision == Decision.ACCEPT
    # and the released network cannot score the re-enrolled one either
    r = verifier(store, RELEASED_SPACE).verify("acme", "alice", voice(9), net_speech_s=5, narrowband=True)
    assert r.decision == Decision.EXPIRED


def test_watchlist_entries_of_another_network_are_not_searched(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    fraudster = voice(5, base=99)
    with store.transaction() as tx:
        t = tx.get_or_create_tenant("acme", actor="t")
        old = tx.add_watchlist_entry(t.id, "old", fraudster, actor="sec")  # released network
        new = tx.add_watchlist_entry(t.id, "new", voice(6, base=99), actor="sec", space=ADAPTED)
    with store.transaction() as tx:
        t = tx.tenant("acme")
        assert [e[0] for e in tx.watchlist(t.id, space=ADAPTED)] == [new]
        assert [e[0] for e in tx.watchlist(t.id)] == [old]
    assert "1 watchlist entries of tenant" in caplog.text and "re-add them" in caplog.text
    enroller(store, ADAPTED).register("acme", "mallory", consent_method="ivr", consent_text_version="v1", actor="t")
    hit = enroller(store, ADAPTED).enroll("acme", "mallory", voice(7, base=99), Q, narrowband=True).watchlist_hit
    assert hit is not None and hit.entry_id == new


def test_migration_0006_reads_old_rows_as_the_released_network(db_url: str) -> None:
    engine = create_db_engine(db_url)
    keyring = test_keyring()
    assert "space" not in enrolled_at_revision(engine, keyring, "0005", voice(1))
    store = Store(engine, keyring, clock=FakeClock())  # migrates to head
    try:
        with store.transaction() as tx:
            assert tx.session.execute(select(Voiceprint.space)).scalar_one() is None
            vp = tx.voiceprint(tx.require_speaker(tx.tenant("acme").id, "alice"))
            assert vp is not None and vp.space == RELEASED_SPACE
    finally:
        store.dispose()


def test_the_service_refuses_a_cohort_of_another_network(tmp_path: Path) -> None:
    shipped = cohort_space(COHORT_DIR)
    assert shipped is not None and shipped.startswith("tel-")  # the shipped cohort is telephone-adapted
    folder = tmp_path / "cohort"
    folder.mkdir()
    manifest = json.loads((COHORT_DIR / "MANIFEST.json").read_text(encoding="utf-8"))
    (folder / "MANIFEST.json").write_text(json.dumps(manifest), encoding="utf-8")
    settings = Settings(scoring_cohort_dir=folder, telephone_adapter=False)
    with pytest.raises(ConfigError, match="VOICEAUTH_TELEPHONE_ADAPTER=false") as err:
        check_cohort_space(settings, telephone_space(object()))  # no adapter: the released network
    assert "python -m voiceauth.scoring.build" in str(err.value)
    check_cohort_space(settings.model_copy(update={"telephone_adapter": True}), shipped)  # the matching network
    del manifest["telephone_space"]  # an older manifest: the engine tag tells
    (folder / "MANIFEST.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert cohort_space(folder) == shipped


class ReleasedNetwork(FakeEngine):
    """Stands in for an ECAPA engine run without the telephone adaptation (it declares its network)."""

    telephone_adapter = None


def test_the_pipeline_checks_the_cohort_against_the_engine_it_is_given(tmp_path: Path) -> None:
    """The API attaches its engine after loading it, so the check cannot depend on who built the engine."""
    settings = Settings(home=tmp_path, data_dir=tmp_path / "data", antispoof_mode="off")
    with pytest.raises(ConfigError, match="rebuild the cohort"):
        Pipeline.from_settings(settings, engine=ReleasedNetwork(), frontend=object())  # type: ignore[arg-type]
    pipe = Pipeline.from_settings(settings, engine=FakeEngine(), frontend=object())  # type: ignore[arg-type]
    try:  # a test fake declares no network: nothing to check, its space is the released one
        assert pipe.space == RELEASED_SPACE
    finally:
        pipe.store.dispose()


def test_report_voiceprints_counts_what_must_be_re_enrolled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``voiceauth report voiceprints`` against the store: per tenant, voiceprints of the configured network and
    those of another one, without loading a model."""
    from typer.testing import CliRunner

    from voiceauth.cli import app
    from voiceauth.config import get_settings
    from voiceauth.embedding.space import configured_space
    from voiceauth.store.repo import open_store

    monkeypatch.setenv("VOICEAUTH_HOME", str(tmp_path))
    get_settings.cache_clear()
    settings = get_settings()
    current = configured_space(settings)
    assert current.startswith("tel-")  # the telephone adaptation is on by default
    store = open_store(settings)
    try:
        for ref, space in (("alice", RELEASED_SPACE), ("bob", current), ("carol", current)):
            enroller(store, space).register("acme", ref, consent_method="ivr", consent_text_version="v1", actor="t")
            enrol(store, space, ref)
    finally:
        store.dispose()
    try:
        res = CliRunner().invoke(app, ["report", "voiceprints", "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.output) == {
            "acme": {"network": current, "usable": 2, "to_re_enrol": 1, "by_network": {RELEASED_SPACE: 1, current: 2}}
        }
        res = CliRunner().invoke(app, ["report", "voiceprints"])
        assert res.exit_code == 0 and "to re-enrol" in res.output and "acme" in res.output
        res = CliRunner().invoke(app, ["report", "voiceprints", "--tenant", "nobody"])
        assert res.exit_code != 0 and "does not exist" in res.output
        res = CliRunner().invoke(app, ["report", "kpi", "--json"])  # the KPIs read the same store the same way
        assert res.exit_code == 0, res.output
        kpi = json.loads(res.output)["acme"]
        assert kpi["registered"] == 3 and kpi["calls_verified"] == 0
        assert kpi["enrolled"] == 2  # alice's voiceprint is the released network's: she must re-enrol
    finally:
        get_settings.cache_clear()
