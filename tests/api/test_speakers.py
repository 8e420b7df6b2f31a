"""Speakers, enrolment and verification through HTTP (FakeEngine): the integrator contract."""

from __future__ import annotations

from tests.api.conftest import Api, sample


def test_register_enrol_verify_contract(api: Api) -> None:
    r = api.register("cust-1")
    assert r.status_code == 201, r.text
    assert r.json()["external_ref"] == "cust-1" and r.json()["enrolled"] is False
    assert r.json()["consent"]["method"] == "ivr"

    r = api.enroll("cust-1", sample("george_a"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"progress", "enrolled", "feedback"}
    assert body["enrolled"] is True and body["feedback"] == ["OK"] and 0 < body["progress"] <= 100
    assert "watchlist_hit" not in body

    same = api.verify("cust-1", sample("george_b"))
    assert same.status_code == 200 and same.json() == {"decision": "ACCEPT"}  # telephony: decision only
    other = api.verify("cust-1", sample("jackson_a"))
    assert other.json() == {"decision": "REJECT"}

    sec = api.verify("cust-1", sample("george_c"), who="acme:security").json()
    assert sec["decision"] == "ACCEPT"
    assert 0 <= sec["score"] <= 100 and -1 <= sec["raw_score"] <= 1 and sec["threshold"] == 95.0

    got = api.client.get("/v1/speakers/cust-1", headers=api.h("acme:telephony")).json()
    assert got["enrolled"] is True and got["utterances"] == 1 and got["status"] == "active"


def test_duplicate_register_is_conflict_and_consent_is_required(api: Api) -> None:
    assert api.register("cust-2").status_code == 201
    dup = api.register("cust-2")
    assert dup.status_code == 409 and dup.headers["content-type"] == "application/problem+json"
    assert dup.json()["type"] == "urn:voiceauth:problem:already-exists"
    missing = api.client.post("/v1/speakers", json={"external_ref": "x1"}, headers=api.h("acme:telephony"))
    assert missing.status_code == 422 and missing.json()["code"] == "invalid-request"


def test_enrol_unknown_speaker_is_404(api: Api) -> None:
    r = api.enroll("nobody", sample("george_a"))
    assert r.status_code == 404 and r.json()["code"] == "not-found"


def test_short_speech_gives_feedback_not_error(api: Api) -> None:
    api.register("cust-3")
    # theo_a is quiet: the front end's code comes back as feedback, nothing enrolled
    r = api.enroll("cust-3", sample("theo_a"))
    assert r.status_code == 200
    assert r.json()["accepted"] is False and r.json()["feedback"] == ["TOO_QUIET"] and r.json()["progress"] == 0


def test_unknown_speaker_looks_like_a_mismatch_to_telephony(api: Api) -> None:
    api.register("cust-4")
    api.enroll("cust-4", sample("george_a"))
    mismatch = api.verify("cust-4", sample("jackson_a"))
    unknown = api.verify("no-such-customer", sample("jackson_a"))
    assert unknown.status_code == mismatch.status_code == 200
    assert unknown.json() == mismatch.json() == {"decision": "REJECT"}
    truth = api.verify("no-such-customer", sample("jackson_a"), who="acme:security")
    assert truth.json()["decision"] == "NOT_ENROLLED"


def test_opt_out_then_verify_is_opted_out_and_reconsent_allows_enrolment(api: Api) -> None:
    api.register("cust-5")
    api.enroll("cust-5", sample("george_a"))
    r = api.client.post("/v1/speakers/cust-5/opt-out", headers=api.h("acme:telephony"))
    assert r.status_code == 200 and r.json()["status"] == "opted_out" and r.json()["enrolled"] is False
    assert api.verify("cust-5", sample("george_b")).json() == {"decision": "OPTED_OUT"}
    refused = api.enroll("cust-5", sample("george_a"))
    assert refused.status_code == 409 and refused.json()["code"] == "consent-required"
    c = api.client.post(
        "/v1/speakers/cust-5/consent", json={"method": "web", "text_version": "v2"}, headers=api.h("acme:telephony")
    )
    assert c.status_code == 201
    assert api.enroll("cust-5", sample("george_a")).json()["enrolled"] is True


def test_erasure_returns_204_and_speaker_is_gone(api: Api) -> None:
    api.register("cust-6")
    api.enroll("cust-6", sample("george_a"))
    r = api.client.delete("/v1/speakers/cust-6", headers=api.h("acme:telephony"))
    assert r.status_code == 204 and r.content == b""
    assert api.client.get("/v1/speakers/cust-6", headers=api.h("acme:telephony")).status_code == 404
    assert api.client.delete("/v1/speakers/cust-6", headers=api.h("acme:telephony")).status_code == 404


def test_invalid_external_ref_is_422(api: Api) -> None:
    r = api.client.get("/v1/speakers/bad%20ref%00", headers=api.h("acme:telephony"))
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"


def test_re_enrolment_replaces(api: Api) -> None:
    api.register("cust-7")
    api.enroll("cust-7", sample("george_a"))
    api.enroll("cust-7", sample("george_b"))
    assert api.client.get("/v1/speakers/cust-7", headers=api.h("acme:telephony")).json()["utterances"] == 2
    r = api.enroll("cust-7", sample("george_c"), replace="true")
    assert r.json()["utterances"] == 1 and r.json()["enrolled"] is True
