"""Authentication, roles, tenant isolation, lockout (injected clock) and per-key rate limits through HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.api.conftest import Api, audio_file, bearer, sample

PROBLEM = "application/problem+json"

# (method, path, needs) -> which roles may call it; every other role must get 403
ROUTES: list[tuple[str, str, set[str]]] = [
    ("GET", "/v1/speakers/cust-1", {"telephony", "security"}),
    ("POST", "/v1/speakers/cust-1/opt-out", {"telephony", "security"}),
    ("PUT", "/v1/speakers/cust-1/voice", {"security"}),
    ("GET", "/v1/thresholds", {"security"}),
    ("PUT", "/v1/thresholds/convenience", {"security"}),
    ("PUT", "/v1/operating-point", {"security"}),
    ("GET", "/v1/watchlist", {"security"}),
    ("GET", "/v1/audit/events", {"security"}),
    ("GET", "/v1/audit/verify", {"security"}),
    ("GET", "/v1/kpis", {"security"}),
    ("GET", "/v1/keys", {"admin"}),
    ("POST", "/v1/keys", {"admin"}),
    ("POST", "/v1/tenants", {"admin"}),
    ("GET", "/v1/tenant", {"admin", "security", "telephony"}),
]
BODIES = {
    "/v1/speakers/cust-1/voice": {"enabled": True},
    "/v1/thresholds/convenience": {"value": 70.0},
    "/v1/operating-point": {"name": "convenience"},
    "/v1/keys": {"role": "telephony"},
    "/v1/tenants": {"name": "newco"},
}


@pytest.mark.parametrize("role", ["telephony", "security", "admin"])
def test_each_role_allowed_and_refused(api: Api, role: str) -> None:
    api.register("cust-1")
    for path in ("/v1/speakers/cust-1/enrollments", "/v1/speakers/cust-1/verifications"):
        r = api.client.post(path, files=audio_file(sample("george_a")), headers=api.h(f"acme:{role}"))
        assert (r.status_code == 200) == (role in {"telephony", "security"}), (path, role, r.text)
        if role == "admin":
            assert r.status_code == 403
    for method, path, allowed in ROUTES:
        r = api.client.request(method, path, json=BODIES.get(path), headers=api.h(f"acme:{role}"))
        if role in allowed:
            assert r.status_code < 300, (method, path, role, r.text)
        else:
            assert r.status_code == 403, (method, path, role, r.text)
            assert r.headers["content-type"] == PROBLEM and r.json()["code"] == "forbidden-role"


def test_missing_malformed_revoked_keys_are_401(api: Api) -> None:
    r = api.client.get("/v1/tenant")
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert api.client.get("/v1/tenant", headers=bearer("va_deadbeef_nope")).status_code == 401
    assert api.client.get("/v1/tenant", headers={"Authorization": "Basic dXNlcg=="}).status_code == 401
    created = api.client.post("/v1/keys", json={"role": "telephony", "label": "x"}, headers=api.h("acme:admin"))
    assert created.status_code == 201
    key, key_id = created.json()["key"], created.json()["id"]
    assert api.client.get("/v1/tenant", headers=bearer(key)).json()["name"] == "acme"
    listed = api.client.get("/v1/keys", headers=api.h("acme:admin")).json()
    assert all("key" not in k for k in listed) and any(k["id"] == key_id for k in listed)
    assert api.client.delete(f"/v1/keys/{key_id}", headers=api.h("acme:admin")).status_code == 204
    assert api.client.get("/v1/tenant", headers=bearer(key)).status_code == 401


def test_keys_are_stored_hashed(api: Api) -> None:
    from sqlalchemy import select

    from voiceauth.store.models import ApiKey

    with api.store.transaction() as tx:
        hashes = list(tx.session.execute(select(ApiKey.key_hash)).scalars())
    for key in api.keys.values():
        secret = key.split("_", 2)[2]  # va_<8 hex>_<token_urlsafe(32)>: the secret may itself contain "_"
        assert len(secret) >= 40
        assert key not in hashes and all(secret not in h for h in hashes)


def test_cross_tenant_refused(api: Api) -> None:
    api.register("cust-1")
    api.enroll("cust-1", sample("george_a"))
    o = "other:telephony"
    assert api.client.get("/v1/speakers/cust-1", headers=api.h(o)).status_code == 404
    assert api.enroll("cust-1", sample("george_a"), who=o).status_code == 404
    assert api.verify("cust-1", sample("george_b"), who=o).json() == {"decision": "REJECT"}
    assert api.verify("cust-1", sample("george_b"), who="other:security").json()["decision"] == "NOT_ENROLLED"
    assert api.client.delete("/v1/speakers/cust-1", headers=api.h(o)).status_code == 404
    assert api.client.post("/v1/speakers/cust-1/opt-out", headers=api.h(o)).status_code == 404
    # the other tenant may use the same reference for its own, separate speaker
    assert api.register("cust-1", who=o).status_code == 201
    # acme's admin cannot see or revoke other's keys
    other_ids = {k["id"] for k in api.client.get("/v1/keys", headers=api.h("other:admin")).json()}
    acme_ids = {k["id"] for k in api.client.get("/v1/keys", headers=api.h("acme:admin")).json()}
    assert other_ids.isdisjoint(acme_ids)
    victim = min(other_ids)
    assert api.client.delete(f"/v1/keys/{victim}", headers=api.h("acme:admin")).status_code == 404
    # audit events of one tenant are not visible to another
    events = api.client.get("/v1/audit/events", headers=api.h("other:security")).json()["events"]
    acme_prefix = api.keys["acme:telephony"].split("_")[1]
    assert events and all(acme_prefix not in e["actor"] for e in events)
    # acme's speaker still verifies for acme
    assert api.verify("cust-1", sample("george_b")).json() == {"decision": "ACCEPT"}


def test_lockout_after_five_failures_doubles_and_caps(api_factory: Callable[..., Api]) -> None:
    api = api_factory(lockout_disable_failures=8)
    api.register("cust-1")
    api.enroll("cust-1", sample("george_a"))
    good, bad = sample("george_b"), sample("jackson_a")
    for _ in range(5):
        assert api.verify("cust-1", bad).json() == {"decision": "REJECT"}
    # locked for 30 s, even for the genuine voice
    assert api.verify("cust-1", good).json() == {"decision": "LOCKED_OUT"}
    api.clock.advance(29)
    assert api.verify("cust-1", good).json() == {"decision": "LOCKED_OUT"}
    api.clock.advance(2)  # 31 s after the fifth failure
    assert api.verify("cust-1", bad).json() == {"decision": "REJECT"}  # sixth failure: now 60 s
    api.clock.advance(59)
    assert api.verify("cust-1", good).json() == {"decision": "LOCKED_OUT"}
    sec = api.verify("cust-1", good, who="acme:security").json()
    assert sec["decision"] == "LOCKED_OUT" and "locked_until" in sec
    api.clock.advance(2)
    assert api.verify("cust-1", good).json() == {"decision": "ACCEPT"}  # success resets the count
    # hard cap: 8 consecutive failures disable voice until security staff re-enable it
    for i in range(8):
        api.clock.advance(10_000)
        assert api.verify("cust-1", bad).json()["decision"] == "REJECT", i
    api.clock.advance(10**7)
    assert api.verify("cust-1", good).json() == {"decision": "LOCKED_OUT"}
    assert api.client.get("/v1/speakers/cust-1", headers=api.h("acme:security")).json()["voice_disabled"] is True
    r = api.client.put("/v1/speakers/cust-1/voice", json={"enabled": True}, headers=api.h("acme:security"))
    assert r.status_code == 200 and r.json()["voice_disabled"] is False
    assert api.verify("cust-1", good).json() == {"decision": "ACCEPT"}


def test_rate_limit_per_key(api_factory: Callable[..., Api]) -> None:
    api = api_factory(api_rate_limit_burst=3, api_rate_limit_per_minute=60.0)
    h = api.h("acme:telephony")
    for _ in range(3):
        assert api.client.get("/v1/tenant", headers=h).status_code == 200
    r = api.client.get("/v1/tenant", headers=h)
    assert r.status_code == 429 and r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "rate-limited" and int(r.headers["retry-after"]) >= 1
    # another key of the same tenant has its own budget
    assert api.client.get("/v1/tenant", headers=api.h("acme:security")).status_code == 200
    api.clock.advance(1.0)  # 60/min refills one token a second
    assert api.client.get("/v1/tenant", headers=h).status_code == 200
    assert api.client.get("/v1/tenant", headers=h).status_code == 429
