"""Challenge-response liveness over HTTP with the real engine and recogniser: a challenge, then a verification
that says its digits (FSDD recordings concatenated)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Api, make_api, sample, wav_bytes
from tests.api.test_real_engine import BACKEND
from tests.liveness.conftest import wrong

pytestmark = pytest.mark.model


@pytest.fixture
def live_api(engine: Any, tmp_path: Path) -> Iterator[Api]:
    gen = make_api(
        f"sqlite+pysqlite:///{tmp_path / 'live.db'}",
        tmp_path,
        engine=engine,
        scorer=None,
        threshold=None,
        scoring_backend=BACKEND,
        enroll_min_speech_s=8.0,
        enroll_target_speech_s=20.0,
        replay_check=True,
        antispoof_mode="off",  # liveness alone here; the countermeasure has its own tests (tests/antispoof)
    )
    yield next(gen)
    for _ in gen:
        pass


def _enrol(api: Api, ref: str, speaker: str) -> None:
    assert api.register(ref).status_code == 201
    for take in "abc":
        api.enroll(ref, sample(f"{speaker}_{take}"))
    assert api.client.get(f"/v1/speakers/{ref}", headers=api.h("acme:telephony")).json()["enrolled"] is True


def _challenge(api: Api, ref: str, who: str = "acme:telephony") -> dict[str, Any]:
    r = api.client.post(f"/v1/speakers/{ref}/challenges", headers=api.h(who))
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"challenge_id", "digits", "expires_at"} and len(body["digits"]) == 6
    return body


def test_challenge_right_digits_accept_wrong_digits_fail_reuse_and_expiry_refused(live_api: Api, caller: Any) -> None:
    api = live_api
    _enrol(api, "c-1", "lucas")
    lucas = caller("lucas")

    ch = _challenge(api, "c-1")
    r = api.verify("c-1", wav_bytes(lucas.say(ch["digits"]), 8000), challenge_id=ch["challenge_id"])
    assert r.json() == {"decision": "ACCEPT"}

    # reuse of an answered challenge: refused with a problem document, no decision
    again = api.verify("c-1", wav_bytes(lucas.say(ch["digits"]), 8000), challenge_id=ch["challenge_id"])
    assert again.status_code == 409 and again.json()["code"] == "challenge-used"
    assert again.headers["content-type"].startswith("application/problem+json")

    ch = _challenge(api, "c-1")
    r = api.verify("c-1", wav_bytes(lucas.say(wrong(ch["digits"])), 8000), challenge_id=ch["challenge_id"])
    assert r.json() == {"decision": "CHALLENGE_FAILED"}  # telephony sees the state only

    ch = _challenge(api, "c-1")
    api.clock.advance(61)
    late = api.verify("c-1", wav_bytes(lucas.say(ch["digits"]), 8000), challenge_id=ch["challenge_id"])
    assert late.status_code == 410 and late.json()["code"] == "challenge-expired"

    unknown = api.verify("c-1", wav_bytes(lucas.say("123456"), 8000), challenge_id="ch_nonesuch")
    assert unknown.status_code == 404 and unknown.json()["code"] == "challenge-unknown"

    # a challenge of another reference does not answer for this one
    other = _challenge(api, "c-2")
    r = api.verify("c-1", wav_bytes(lucas.say(other["digits"]), 8000), challenge_id=other["challenge_id"])
    assert r.status_code == 404

    # security staff's KPIs: 4 issued, 2 answered (1 passed, 1 wrong digits), 1 expired unanswered
    k = api.client.get("/v1/console/kpis", headers=api.h("acme:security")).json()
    assert (k["challenges_issued"], k["challenges_answered"], k["challenge_pass_rate"]) == (4, 2, 0.5)
    assert k["challenge_failures"] == {"wrong-digits": 1, "expired": 1}
    assert api.client.get("/v1/console/kpis", headers=api.h("acme:telephony")).status_code == 403


def test_security_staff_see_what_was_heard_and_failures_count_toward_lockout(live_api: Api, caller: Any) -> None:
    api = live_api
    _enrol(api, "c-1", "lucas")
    lucas = caller("lucas")
    ch = _challenge(api, "c-1")
    said = wrong(ch["digits"])
    sec = api.verify(
        "c-1", wav_bytes(lucas.say(said), 8000), who="acme:security", challenge_id=ch["challenge_id"]
    ).json()
    assert sec["decision"] == "CHALLENGE_FAILED" and sec["challenge_result"] in ("wrong-digits", "no-digits")
    assert sec["score"] >= sec["threshold"]  # the voice itself matched
    events = api.client.get("/v1/audit/events", params={"limit": 1000}, headers=api.h("acme:security")).json()
    details = [
        e["details"]
        for e in events["events"]
        if e["action"] == "verify" and e["details"].get("challenge") == ch["challenge_id"]
    ]
    assert details and details[0]["challenge_result"] == sec["challenge_result"]
    assert len(details[0]["challenge_heard"]) in (0, 6)
    with api.store.transaction() as tx:
        t = tx.tenant("acme")
        spk = tx.require_speaker(t.id, "c-1")
        assert tx.lockout(spk).consecutive_failures == 1


def test_impostor_saying_the_right_digits_is_rejected_unknown_reference_gets_a_challenge(
    live_api: Api, caller: Any
) -> None:
    api = live_api
    _enrol(api, "c-1", "lucas")
    theo = caller("theo")
    ch = _challenge(api, "c-1")
    r = api.verify("c-1", wav_bytes(theo.say(ch["digits"]), 8000), challenge_id=ch["challenge_id"])
    assert r.json() == {"decision": "REJECT"}
    # an unknown reference gets a challenge like any other, and wrong digits read as for an enrolled caller
    ch = _challenge(api, "nobody")
    r = api.verify("nobody", wav_bytes(theo.say(wrong(ch["digits"])), 8000), challenge_id=ch["challenge_id"])
    assert r.json() == {"decision": "CHALLENGE_FAILED"}
