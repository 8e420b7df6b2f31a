"""Health, readiness, metrics, OpenAPI, and the security/admin resources (thresholds, watchlist, audit, KPIs)."""

from __future__ import annotations

from tests.api.conftest import Api, audio_file, bearer, sample


def test_health_ready_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["model_loaded"] and ready.json()["store_reachable"]
    api.register("cust-1")
    api.enroll("cust-1", sample("george_a"))
    api.verify("cust-1", sample("george_b"))
    api.verify("cust-1", sample("jackson_a"))
    text = api.client.get("/metrics").text
    assert 'voiceauth_verification_decisions_total{decision="ACCEPT"} 1.0' in text
    assert 'voiceauth_verification_decisions_total{decision="REJECT"} 1.0' in text
    assert "voiceauth_model_embed_seconds_count 3.0" in text
    assert "voiceauth_enrollment_progress_percent_count 1.0" in text
    assert 'route="/v1/speakers/{external_ref}/verifications"' in text  # templates, not raw paths


def test_openapi_lists_the_contract(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    paths = spec["paths"]
    assert "post" in paths["/v1/speakers"] and "delete" in paths["/v1/speakers/{external_ref}"]
    for p in ("/v1/speakers/{external_ref}/enrollments", "/v1/speakers/{external_ref}/verifications"):
        schema_ref = paths[p]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
        name = schema_ref.rsplit("/", 1)[-1]
        assert "audio" in spec["components"]["schemas"][name]["properties"]
    assert spec["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"


def test_thresholds_change_decisions_and_are_audited(api: Api) -> None:
    sec = api.h("acme:security")
    api.register("cust-1")
    api.enroll("cust-1", sample("george_a"))
    assert api.verify("cust-1", sample("jackson_a")).json()["decision"] == "REJECT"
    got = api.client.get("/v1/thresholds", headers=sec).json()
    assert got["operating_point"] == "high_security" and got["overrides"]["high_security"] == 95.0
    r = api.client.put("/v1/thresholds/high_security", json={"value": 60.0}, headers=sec)
    assert r.status_code == 200 and r.json()["effective"]["high_security"] == 60.0
    assert api.verify("cust-1", sample("jackson_a")).json()["decision"] == "ACCEPT"
    assert api.client.put("/v1/thresholds/high_security", json={"value": 101}, headers=sec).status_code == 422
    assert api.client.put("/v1/operating-point", json={"name": "nope"}, headers=sec).status_code == 404
    events = api.client.get("/v1/audit/events", headers=sec).json()["events"]
    change = [e for e in events if e["action"] == "threshold.set" and e["details"]["new"] == 60.0]
    assert change and change[0]["details"]["old"] == 95.0 and change[0]["actor"].endswith(":security")


def test_watchlist_hit_is_flagged_to_security_only(api: Api) -> None:
    sec = api.h("acme:security")
    r = api.client.post("/v1/watchlist", files=audio_file(sample("jackson_a")), data={"label": "fraud-1"}, headers=sec)
    assert r.status_code == 201, r.text
    entry = r.json()["id"]
    assert [e["label"] for e in api.client.get("/v1/watchlist", headers=sec).json()] == ["fraud-1"]
    api.register("cust-1")
    api.enroll("cust-1", sample("george_a"))
    v = api.verify("cust-1", sample("jackson_a"), who="acme:security").json()
    assert v["watchlist_hit"]["entry_id"] == entry
    assert "watchlist_hit" not in api.verify("cust-1", sample("jackson_a")).json()
    kpi = api.client.get("/v1/kpis", headers=sec).json()
    assert kpi["watchlist_hits"] == 2 and kpi["verifications"]["REJECT"] == 2 and kpi["enrolled"] == 1
    assert api.client.delete(f"/v1/watchlist/{entry}", headers=sec).status_code == 204
    assert api.client.delete(f"/v1/watchlist/{entry}", headers=sec).status_code == 404


def test_audit_records_key_use_with_pseudonyms_and_verifies(api: Api) -> None:
    sec = api.h("acme:security")
    api.register("customer-77")
    api.enroll("customer-77", sample("george_a"))
    api.verify("customer-77", sample("george_b"))
    page = api.client.get("/v1/audit/events", params={"limit": 1000}, headers=sec).json()
    actions = [e["action"] for e in page["events"]]
    for a in ("speaker.create", "consent.record", "enroll.accept", "verify", "threshold.set"):
        assert a in actions
    assert all("customer-77" not in str(e) for e in page["events"])
    assert all(e["actor"].startswith("key:") or e["actor"] == "test" for e in page["events"])
    chain = api.client.get("/v1/audit/verify", headers=sec).json()
    assert chain["ok"] is True and chain["events"] >= len(page["events"])
    one = api.client.get("/v1/audit/events", params={"limit": 2}, headers=sec).json()
    assert len(one["events"]) == 2 and one["next_after_seq"] == one["events"][-1]["seq"]


def test_admin_creates_tenant_whose_key_is_isolated(api: Api) -> None:
    r = api.client.post("/v1/tenants", json={"name": "newco"}, headers=api.h("acme:admin"))
    assert r.status_code == 201
    admin_key = r.json()["admin_key"]
    assert api.client.get("/v1/tenant", headers=bearer(admin_key)).json()["name"] == "newco"
    assert api.client.post("/v1/tenants", json={"name": "newco"}, headers=api.h("acme:admin")).status_code == 409
    k = api.client.post("/v1/keys", json={"role": "telephony"}, headers=bearer(admin_key)).json()["key"]
    api.register("cust-1")
    assert api.client.get("/v1/speakers/cust-1", headers=bearer(k)).status_code == 404


def test_unknown_path_and_method_are_problems(api: Api) -> None:
    r = api.client.get("/v1/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = api.client.patch("/v1/speakers", headers=api.h("acme:telephony"))
    assert r.status_code == 405 and r.headers["content-type"] == "application/problem+json"
