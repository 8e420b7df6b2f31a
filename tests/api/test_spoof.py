"""Replay over HTTP: the same WAV uploaded twice is ACCEPT then SPOOF_SUSPECTED; telephony sees the decision only."""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import select

from tests.api.conftest import Api, sample
from voiceauth.store.models import AuditEvent


def test_replayed_upload_is_spoof_suspected_and_scores_stay_off_telephony(api_factory: Callable[..., Api]) -> None:
    api = api_factory(replay_check=True)
    assert api.register("cust-r").status_code == 201
    assert api.enroll("cust-r", sample("george_a")).json()["enrolled"] is True
    first = api.verify("cust-r", sample("george_b"))
    assert first.status_code == 200 and first.json() == {"decision": "ACCEPT"}
    again = api.verify("cust-r", sample("george_b"))
    assert again.status_code == 200 and again.json() == {"decision": "SPOOF_SUSPECTED"}  # no score, no reason
    with api.store.transaction() as tx:
        audits = [
            json.loads(e.details)
            for e in tx.session.execute(select(AuditEvent).where(AuditEvent.action == "verify")).scalars()
        ]
    assert [a.get("spoof_reason") for a in audits[-2:]] == [None, "replay"]
