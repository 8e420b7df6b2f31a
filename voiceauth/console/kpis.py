"""The KPIs a contact centre manages voice authentication by, for one tenant since a point in time.

- enrolment rate: of the callers registered in the window, the share with a voiceprint now (one the running
  embedding network can use);
- verification success rate: ACCEPT among verifications of enrolled, active callers (ACCEPT, REJECT,
  NOT_ENOUGH_SPEECH, LOCKED_OUT); claims of unknown, opted-out or expired callers are not counted;
- fallback-to-PIN rate: of the IVR calls that ended verified, the share verified by PIN instead of voice (from the
  call outcomes every worker writes to the store's ``calls`` table; from this worker's in-memory outcomes only when
  its IVR keeps none in the store; None when no call was verified);
- average speech time to decision: mean net speech seconds of ACCEPT/REJECT decisions;
- false-reject complaints: ``complaint.false_reject`` audit events (recorded from the console), also per 100 rejects;
- liveness challenges (``voiceauth.liveness``): issued in the window, answered, the pass rate (the digits said were
  the challenge's, of the answered ones) and failures by reason (``wrong-digits``, ``no-digits``, and ``expired``:
  never answered before the expiry).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, or_, select

from voiceauth.embedding.space import RELEASED_SPACE
from voiceauth.store.models import AuditEvent, CallRecord, Challenge, Speaker, VerificationAttempt, Voiceprint
from voiceauth.store.repo import StoreTx

__all__ = ["COMPLAINT_ACTION", "challenge_kpis", "compute_kpis", "pin_fallback", "stored_pin_fallback"]

COMPLAINT_ACTION = "complaint.false_reject"
_ENROLLED_STATES = ("ACCEPT", "REJECT", "NOT_ENOUGH_SPEECH", "LOCKED_OUT")


def _in_space(space: str | None) -> tuple[Any, ...]:
    """SQL conditions for voiceprints made by ``space`` (NULL rows are the released network's); none if None."""
    if space is None:
        return ()
    if space == RELEASED_SPACE:
        return (or_(Voiceprint.space.is_(None), Voiceprint.space == space),)
    return (Voiceprint.space == space,)


def _rate(num: int, den: int) -> float | None:
    return None if den == 0 else round(num / den, 4)


def pin_fallback(calls: Iterable[Any], since: dt.datetime) -> tuple[int, int]:
    """(calls verified by PIN, calls verified) among IVR call outcomes started at or after ``since``."""
    pin = verified = 0
    for c in calls:
        try:
            started = dt.datetime.fromisoformat(c.started_at)
        except (TypeError, ValueError):
            continue
        if started < since or c.method not in ("voice", "pin"):
            continue
        verified += 1
        pin += c.method == "pin"
    return pin, verified


def stored_pin_fallback(tx: StoreTx, tenant_id: int, since: dt.datetime) -> tuple[int, int, int]:
    """(calls verified by PIN, calls verified, calls recorded) among the stored calls started at or after ``since``."""
    rows = tx.session.execute(
        select(CallRecord.method, func.count())
        .where(CallRecord.tenant_id == tenant_id, CallRecord.started_at >= since)
        .group_by(CallRecord.method)
    ).all()
    by_method = {str(m): int(n) for m, n in rows}
    pin = by_method.get("pin", 0)
    return pin, pin + by_method.get("voice", 0), sum(by_method.values())


def challenge_kpis(tx: StoreTx, tenant_id: int, since: dt.datetime) -> dict[str, Any]:
    """Liveness challenges issued at or after ``since``: counts, pass rate and failures by reason."""
    now = tx.clock()
    rows = tx.session.execute(
        select(Challenge.result, Challenge.used_at.is_not(None), Challenge.expires_at < now, func.count())
        .where(Challenge.tenant_id == tenant_id, Challenge.created_at >= since)
        .group_by(Challenge.result, Challenge.used_at.is_not(None), Challenge.expires_at < now)
    ).all()
    issued = answered = passed = 0
    failures: dict[str, int] = {}
    for result, used, expired, n in rows:
        issued += int(n)
        if used:
            answered += int(n)
            if result == "passed":
                passed += int(n)
            elif result in ("wrong-digits", "no-digits"):
                failures[str(result)] = failures.get(str(result), 0) + int(n)
        elif expired:
            failures["expired"] = failures.get("expired", 0) + int(n)
    return {
        "challenges_issued": issued,
        "challenges_answered": answered,
        "challenge_pass_rate": _rate(passed, answered),
        "challenge_failures": failures,
    }


def compute_kpis(
    tx: StoreTx,
    tenant_id: int,
    since: dt.datetime,
    calls: Iterable[Any] | None = None,
    *,
    space: str | None = None,
) -> dict[str, Any]:
    """The KPI values and the counts behind them (JSON-ready). ``calls``: this worker's in-memory call outcomes,
    used only when no call of the window is in the store (an IVR run without ``persist_calls``). ``space``: the
    running embedding network; a voiceprint of another one (to be re-enrolled) does not count as enrolled."""
    s = tx.session
    registered = int(
        s.execute(
            select(func.count()).select_from(Speaker).where(Speaker.tenant_id == tenant_id, Speaker.created_at >= since)
        ).scalar_one()
    )
    enrolled = int(
        s.execute(
            select(func.count())
            .select_from(Voiceprint)
            .join(Speaker)
            .where(Speaker.tenant_id == tenant_id, Speaker.created_at >= since, *_in_space(space))
        ).scalar_one()
    )
    in_window = (VerificationAttempt.tenant_id == tenant_id, VerificationAttempt.created_at >= since)
    by_decision = {
        str(k): int(v)
        for k, v in s.execute(
            select(VerificationAttempt.decision, func.count()).where(*in_window).group_by(VerificationAttempt.decision)
        ).all()
    }
    attempts = sum(by_decision.get(k, 0) for k in _ENROLLED_STATES)
    avg_speech = s.execute(
        select(func.avg(VerificationAttempt.net_speech_s)).where(
            *in_window, VerificationAttempt.decision.in_(("ACCEPT", "REJECT"))
        )
    ).scalar_one()
    complaints = int(
        s.execute(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.tenant_id == tenant_id, AuditEvent.action == COMPLAINT_ACTION, AuditEvent.ts >= since)
        ).scalar_one()
    )
    pin, verified, recorded = stored_pin_fallback(tx, tenant_id, since)
    if recorded == 0 and calls is not None:
        pin, verified = pin_fallback(calls, since)
    rejects = by_decision.get("REJECT", 0)
    return {
        "since": since.isoformat(),
        "enrolment_rate": _rate(enrolled, registered),
        "registered": registered,
        "enrolled": enrolled,
        "verification_success_rate": _rate(by_decision.get("ACCEPT", 0), attempts),
        "verifications": by_decision,
        "fallback_to_pin_rate": _rate(pin, verified),
        "calls_verified": verified,
        "calls_verified_by_pin": pin,
        "avg_speech_s_to_decision": None if avg_speech is None else round(float(avg_speech), 2),
        "false_reject_complaints": complaints,
        "complaints_per_100_rejects": None if rejects == 0 else round(100 * complaints / rejects, 2),
        **challenge_kpis(tx, tenant_id, since),
    }
