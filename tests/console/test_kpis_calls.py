"""The fallback-to-PIN KPI counts the calls every worker stored, of the asking tenant only; a worker's in-memory
outcomes count only when its IVR keeps no calls in the store."""

from __future__ import annotations

import datetime as dt

from ivr.calls import CallOutcome, CallRegistry
from voiceauth.console.kpis import compute_kpis
from voiceauth.store.calls import StoredCall, save_call
from voiceauth.store.repo import Store

START = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
SINCE = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _call(call_id: str, method: str, started: dt.datetime = START) -> StoredCall:
    return StoredCall(
        call_id=call_id,
        protocol="twilio",
        speaker_ref="cust-1",
        decision="ACCEPT" if method == "voice" else "REJECT",
        speech_seconds=4.0,
        decided_at_ms=5200,
        method=method,
        flow_outcome="verified" if method else "transferred",
        reason="stop",
        started_at=started,
        ended_at=started + dt.timedelta(minutes=1),
    )


def test_pin_fallback_comes_from_the_stored_calls_of_the_tenant(store: Store) -> None:
    with store.transaction() as tx:
        acme = tx.get_or_create_tenant("acme", actor="t")
        other = tx.get_or_create_tenant("other", actor="t")
        # written by two workers: the store holds them all
        for i, method in enumerate(["voice", "voice", "voice", "pin", ""]):
            save_call(tx, acme.id, _call(f"CA{i}", method))
        save_call(tx, acme.id, _call("CA-old", "pin", started=SINCE - dt.timedelta(days=1)))  # before the window
        for i in range(4):
            save_call(tx, other.id, _call(f"OT{i}", "pin"))  # another tenant's fallbacks
    registry = CallRegistry()  # this worker's memory also holds another tenant's call: never counted
    registry.put(CallOutcome(call_id="MEM", tenant="other", protocol="twilio", method="pin"))
    with store.transaction() as tx:
        k = compute_kpis(tx, acme.id, SINCE, registry.for_tenant("acme"))
    assert (k["calls_verified"], k["calls_verified_by_pin"], k["fallback_to_pin_rate"]) == (4, 1, 0.25)
    with store.transaction() as tx:
        k = compute_kpis(tx, other.id, SINCE, registry.for_tenant("other"))
    assert (k["calls_verified"], k["calls_verified_by_pin"], k["fallback_to_pin_rate"]) == (4, 4, 1.0)


def test_in_memory_outcomes_count_only_when_no_call_is_stored(store: Store) -> None:
    registry = CallRegistry()
    started = START.isoformat()
    for i, method in enumerate(["voice", "pin", "pin"]):
        registry.put(CallOutcome(call_id=f"M{i}", tenant="acme", protocol="l16", method=method, started_at=started))
    registry.put(CallOutcome(call_id="X", tenant="other", protocol="l16", method="voice", started_at=started))
    with store.transaction() as tx:
        acme = tx.get_or_create_tenant("acme", actor="t")
        k = compute_kpis(tx, acme.id, SINCE, registry.for_tenant("acme"))
    assert (k["calls_verified"], k["calls_verified_by_pin"]) == (3, 2)
    with store.transaction() as tx:
        k = compute_kpis(tx, acme.id, SINCE)  # the CLI report: no IVR, no calls
    assert k["calls_verified"] == 0 and k["fallback_to_pin_rate"] is None
