"""Anti-spoofing over HTTP: replayed uploads, synthetic speech in enforce mode, the tenant's spoof threshold, and
what each role sees (telephony: the decision only; security: score, threshold and reason)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest
import soundfile as sf
from sqlalchemy import select

from tests.api.conftest import Api, sample
from voiceauth.antispoof.attacks import SENTENCES, espeak_available, espeak_synthesize
from voiceauth.store.models import AuditEvent


def _audits(api: Api, action: str) -> list[dict[str, object]]:
    with api.store.transaction() as tx:
        rows = tx.session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars()
        return [json.loads(e.details) for e in rows]


def test_replayed_upload_is_spoof_suspected_and_scores_stay_off_telephony(api_factory: Callable[..., Api]) -> None:
    api = api_factory(replay_check=True)
    assert api.register("cust-r").status_code == 201
    assert api.enroll("cust-r", sample("george_a")).json()["enrolled"] is True
    first = api.verify("cust-r", sample("george_b"))
    assert first.status_code == 200 and first.json() == {"decision": "ACCEPT"}
    again = api.verify("cust-r", sample("george_b"))
    assert again.status_code == 200 and again.json() == {"decision": "SPOOF_SUSPECTED"}  # no score, no reason
    assert [a.get("spoof_reason") for a in _audits(api, "verify")[-2:]] == [None, "replay"]


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (Debian package espeak-ng)")
def test_synthetic_speech_is_refused_in_enforce_mode_at_the_tenants_threshold(api_factory: Callable[..., Api]) -> None:
    # the threshold mechanics on AASIST (spoof log-odds, default threshold 0); the shipped telephone network in its
    # default configuration is tested in tests/antispoof/test_telephone_default.py
    api = api_factory(antispoof_mode="enforce", antispoof_model="aasist", antispoof_max_windows=1)
    buf = io.BytesIO()
    sf.write(buf, espeak_synthesize(SENTENCES[0], "en-us", 150), 16_000, format="WAV", subtype="PCM_16")
    tts = buf.getvalue()
    assert api.register("cust-s").status_code == 201
    assert api.enroll("cust-s", sample("george_a")).json()["enrolled"] is True

    tel = api.verify("cust-s", tts)
    assert tel.status_code == 200 and tel.json() == {"decision": "SPOOF_SUSPECTED"}  # telephony: the state only
    sec = api.verify("cust-s", tts, who="acme:security").json()
    assert sec["decision"] == "SPOOF_SUSPECTED" and sec["spoof_reason"] == "synthetic"
    assert sec["spoof_score"] >= sec["spoof_threshold"] == 0.0

    # the tenant raises its spoof threshold above that score: the same audio is now judged on the voice alone
    body = api.client.put("/v1/thresholds/spoof", json={"value": 40.0}, headers=api.h("acme:security"))
    assert body.status_code == 200, body.text
    spoof = body.json()["spoof"]
    assert spoof == {"mode": "enforce", "default": 0.0, "override": 40.0, "effective": 40.0}
    assert "spoof" not in body.json()["overrides"]  # log-odds, never an operating point
    assert api.client.put("/v1/thresholds/spoof", json={"value": 99}, headers=api.h("acme:security")).status_code == 422
    assert api.client.put("/v1/thresholds/spoof", json={"value": 1}, headers=api.h("acme:telephony")).status_code == 403
    bad = api.client.put("/v1/operating-point", json={"name": "spoof"}, headers=api.h("acme:security"))
    assert bad.status_code == 404
    lenient = api.verify("cust-s", tts, who="acme:security").json()
    assert lenient["decision"] == "REJECT" and lenient["spoof_threshold"] == 40.0 and "spoof_reason" not in lenient
    assert lenient["spoof_score"] == pytest.approx(sec["spoof_score"], abs=1e-3)
    # the other tenant keeps the default
    assert api.register("cust-o", who="other:telephony").status_code == 201
    assert api.enroll("cust-o", sample("george_a"), who="other:telephony").json()["enrolled"] is True
    assert api.verify("cust-o", tts, who="other:telephony").json() == {"decision": "SPOOF_SUSPECTED"}

    changes = [a for a in _audits(api, "threshold.set") if a["name"] == "spoof"]
    assert changes == [{"name": "spoof", "old": None, "new": 40.0}]
    verdicts = [(a["decision"], a["spoof_suspected"], a["spoof_enforced"]) for a in _audits(api, "verify")]
    assert verdicts == [("SPOOF_SUSPECTED", True, True)] * 2 + [
        ("REJECT", False, True),
        ("SPOOF_SUSPECTED", True, True),
    ]
