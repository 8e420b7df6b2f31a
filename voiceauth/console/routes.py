"""The security console: one page (``GET /console``) and the ``/v1/console`` API it reads (security keys only).

The page itself holds no data; its script sends the security key pasted at login as ``Authorization: Bearer`` (kept
in ``sessionStorage``) to these routes and to the existing ``/v1/thresholds``, ``/v1/operating-point``,
``/v1/watchlist`` and ``/v1/audit/*`` routes. The latest calibration report of each tenant (uploaded by
``voiceauth calibrate --publish``) is kept in the store's ``store_meta`` table, so every API worker sees it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from voiceauth.api.deps import get_services, require
from voiceauth.api.services import AppServices
from voiceauth.calibration.stats import Trials, analyze
from voiceauth.console.kpis import COMPLAINT_ACTION, compute_kpis
from voiceauth.console.page import CONSOLE_HTML
from voiceauth.errors import NotFound, StoreError
from voiceauth.store.keys import ApiPrincipal, Role
from voiceauth.store.models import AuditEvent, Lockout, Speaker, StoreMeta, VerificationAttempt
from voiceauth.store.repo import StoreTx

__all__ = ["router"]

router = APIRouter(tags=["console"])
_SECURITY = require(Role.SECURITY)


class ConsoleError(StoreError):
    code = "console-error"


class TrialsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scores: list[float] = Field(min_length=2, max_length=5_000_000)
    enrol: list[int] = Field(min_length=2, max_length=5_000_000)
    probe: list[int] = Field(min_length=2, max_length=5_000_000)


class CalibrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    report: dict[str, Any] = Field(description="report.json of `voiceauth calibrate`")
    det_png: str = Field(max_length=10_000_000, description="base64 PNG")
    scores_png: str = Field(max_length=10_000_000, description="base64 PNG")
    trials: TrialsIn | None = Field(None, description="anonymised trials (scores, speaker indices)")


class ComplaintIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    speaker: str | None = Field(None, min_length=1, max_length=256, description="The caller's external reference.")
    call_id: str = Field("", max_length=128)
    note: str = Field("", max_length=500)


def _check_trials(t: TrialsIn) -> None:
    n = len(t.scores)
    if not (n == len(t.enrol) == len(t.probe)):
        raise ConsoleError(f"trials hold {n} scores, {len(t.enrol)} enrol and {len(t.probe)} probe indices; need equal")
    if not np.all(np.isfinite(t.scores)) or min(t.enrol + t.probe) < 0 or max(t.enrol + t.probe) > 1_000_000:
        raise ConsoleError("trial scores must be finite and speaker indices between 0 and 1000000")
    same = np.asarray(t.enrol) == np.asarray(t.probe)
    if same.all() or not same.any():
        raise ConsoleError("trials need both target and non-target trials")


def _meta_key(tenant_id: int) -> str:
    return f"calibration.report.{tenant_id}"


@router.get("/console", response_class=HTMLResponse, include_in_schema=False)
def console_page() -> HTMLResponse:
    """The console page (no data in it; log in with a security key)."""
    return HTMLResponse(CONSOLE_HTML, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})


def _load_report(tx: StoreTx, tenant_id: int) -> dict[str, Any] | None:
    row = tx.session.get(StoreMeta, _meta_key(tenant_id))
    return None if row is None else dict(json.loads(row.value))


def _measure(stored: dict[str, Any], thresholds: dict[str, float]) -> dict[str, Any]:
    """FAR/FRR with 95% CIs of the latest calibration trials at the tenant's effective thresholds."""
    t = stored.get("trials")
    if not t or not thresholds:
        return {}
    ids, idx = np.unique(np.concatenate([t["enrol"], t["probe"]]).astype(np.int64), return_inverse=True)
    enrol, probe = idx[: len(t["enrol"])].astype(np.int64), idx[len(t["enrol"]) :].astype(np.int64)
    trials = Trials(np.asarray(t["scores"], dtype=np.float64), enrol, probe, tuple(str(i) for i in ids))
    a = analyze(trials, target_far=stored["report"]["target_far"], thresholds=list(thresholds.values()), replicates=300)
    return {
        name: {"threshold": p.threshold, "far": p.far.value, "far_ci": [p.far.low, p.far.high],
               "frr": p.frr.value, "frr_ci": [p.frr.low, p.frr.high],
               "far_ci_method": p.far.method, "frr_ci_method": p.frr.method}
        for name, p in zip(thresholds, a.points, strict=True)
    }  # fmt: skip


@router.post("/v1/console/calibration", status_code=status.HTTP_201_CREATED)
def publish_calibration(
    body: CalibrationIn, p: ApiPrincipal = Depends(_SECURITY), svc: AppServices = Depends(get_services)
) -> dict[str, Any]:
    """Keep a calibration report (from `voiceauth calibrate --publish`) as this tenant's latest (audited)."""
    report = body.report
    far = report.get("target_far")
    if report.get("kind") != "voiceauth.calibration" or not isinstance(far, float) or not 0.0 < far < 1.0:
        raise ConsoleError("report is not a voiceauth calibration report (kind 'voiceauth.calibration', target_far)")
    for name, data in (("det_png", body.det_png), ("scores_png", body.scores_png)):
        try:
            ok = base64.b64decode(data, validate=True).startswith(b"\x89PNG")
        except (ValueError, binascii.Error):
            ok = False
        if not ok:
            raise ConsoleError(f"{name} is not a base64 PNG image")
    if body.trials is not None:
        _check_trials(body.trials)
    keep = body.model_dump()
    with svc.store.transaction() as tx:
        row = tx.session.get(StoreMeta, _meta_key(p.tenant_id))
        if row is None:
            tx.session.add(StoreMeta(key=_meta_key(p.tenant_id), value=json.dumps(keep)))
        else:
            row.value = json.dumps(keep)
        summary = {k: report.get(k) for k in ("eer", "threshold", "target_far", "target_trials", "nontarget_trials")}
        tx.audit("calibration.publish", actor=p.actor, tenant_id=p.tenant_id, details=summary)
    return {"published": True, **summary}


@router.get("/v1/console/calibration")
def latest_calibration(
    p: ApiPrincipal = Depends(_SECURITY), svc: AppServices = Depends(get_services)
) -> dict[str, Any]:
    """The latest calibration report (without its trials) and its figures as data URLs."""
    with svc.store.transaction() as tx:
        stored = _load_report(tx, p.tenant_id)
    if stored is None:
        raise NotFound("no calibration report has been published for this tenant; run `voiceauth calibrate --publish`")
    return {
        "report": stored["report"],
        "det_png": "data:image/png;base64," + stored["det_png"],
        "scores_png": "data:image/png;base64," + stored["scores_png"],
    }


@router.get("/v1/console/overview")
def overview(p: ApiPrincipal = Depends(_SECURITY), svc: AppServices = Depends(get_services)) -> dict[str, Any]:
    """Tenant, its operating points (defaults, overrides, in use) and their FAR/FRR measured by the latest report."""
    from voiceauth.api.routes.security import _thresholds

    with svc.store.transaction() as tx:
        th = _thresholds(tx, svc, p.tenant_id)
        stored = _load_report(tx, p.tenant_id)
    return {
        "tenant": p.tenant,
        "thresholds": th.model_dump(),
        "measured": _measure(stored, th.effective) if stored else {},
        "calibration": None
        if stored is None
        else {k: stored["report"].get(k) for k in ("created_at", "source", "eer")},
    }


@router.get("/v1/console/decisions")
def decisions(
    limit: int = Query(50, ge=1, le=500),
    p: ApiPrincipal = Depends(_SECURITY),
    svc: AppServices = Depends(get_services),
) -> list[dict[str, Any]]:
    """The newest verification decisions with their scores (security staff only; audited)."""
    with svc.store.transaction() as tx:
        rows = tx.session.execute(
            select(VerificationAttempt, Speaker.external_ref)
            .outerjoin(Speaker, Speaker.id == VerificationAttempt.speaker_id)
            .where(VerificationAttempt.tenant_id == p.tenant_id)
            .order_by(VerificationAttempt.id.desc())
            .limit(limit)
        ).all()
        tx.audit("decisions.read", actor=p.actor, tenant_id=p.tenant_id, details={"rows": len(rows)})
        return [
            {"id": a.id, "at": a.created_at.isoformat(), "speaker": ref, "decision": a.decision,
             "score": a.calibrated, "threshold": a.threshold, "operating_point": a.operating_point,
             "raw_cosine": a.raw_cosine, "speech_s": a.net_speech_s, "narrowband": a.narrowband,
             "watchlist_hit": a.watchlist_entry_id is not None, "call_id": a.call_id}
            for a, ref in rows
        ]  # fmt: skip


@router.get("/v1/console/lockouts")
def lockouts(p: ApiPrincipal = Depends(_SECURITY), svc: AppServices = Depends(get_services)) -> list[dict[str, Any]]:
    """Callers locked out now, with failures counted, or with voice disabled by repeated failures."""
    with svc.store.transaction() as tx:
        now = tx.clock()
        rows = tx.session.execute(
            select(Speaker, Lockout)
            .outerjoin(Lockout, Lockout.speaker_id == Speaker.id)
            .where(Speaker.tenant_id == p.tenant_id)
            .where((Lockout.consecutive_failures > 0) | Speaker.voice_disabled.is_(True))
            .order_by(Speaker.external_ref)
        ).all()
        return [
            {"speaker": s.external_ref, "failures": lk.consecutive_failures if lk else 0,
             "locked_until": lk.locked_until.isoformat() if lk and lk.locked_until else None,
             "locked": bool(lk and lk.locked_until and lk.locked_until > now), "voice_disabled": s.voice_disabled}
            for s, lk in rows
        ]  # fmt: skip


@router.delete("/v1/console/lockouts/{ref}", status_code=status.HTTP_200_OK)
def clear_lockout(
    ref: str = Path(min_length=1, max_length=256),
    p: ApiPrincipal = Depends(_SECURITY),
    svc: AppServices = Depends(get_services),
) -> dict[str, Any]:
    """Clear a caller's lockout: failures to 0, no lock, voice re-enabled (audited)."""
    with svc.store.transaction() as tx:
        spk = tx.require_speaker(p.tenant_id, ref, lock=True)
        lk = tx.lockout(spk)
        old = {"failures": lk.consecutive_failures, "voice_disabled": spk.voice_disabled}
        lk.consecutive_failures, lk.locked_until, lk.updated_at = 0, None, tx.clock()
        if spk.voice_disabled:
            tx.set_voice_disabled(spk, False, actor=p.actor)
        tx.audit("lockout.clear", actor=p.actor, speaker=spk, details=old)
    return {"speaker": ref, "cleared": True}


def _ivr_calls(request: Request, tenant: str) -> list[Any] | None:
    """This worker's in-memory call outcomes of ``tenant`` (None without an IVR)."""
    registry = getattr(getattr(request.app.state, "ivr", None), "registry", None)
    return None if registry is None else list(registry.for_tenant(tenant))


def parse_since(since: str | None, days: int, now: dt.datetime) -> dt.datetime:
    """``since`` as ISO date/time (UTC when naive), or ``now - days``."""
    if not since:
        return now - dt.timedelta(days=days)
    try:
        t = dt.datetime.fromisoformat(since)
    except ValueError as exc:
        raise ConsoleError(f"since={since!r} is not an ISO date or date-time, e.g. 2026-01-31") from exc
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


@router.get("/v1/console/kpis")
def console_kpis(
    request: Request,
    since: str | None = Query(None, max_length=40, description="ISO date/time; default: `days` ago."),
    days: int = Query(30, ge=1, le=3650),
    p: ApiPrincipal = Depends(_SECURITY),
    svc: AppServices = Depends(get_services),
) -> dict[str, Any]:
    """Enrolment rate, verification success rate, fallback-to-PIN rate, speech time to decision, complaints."""
    calls = _ivr_calls(request, p.tenant)
    with svc.store.transaction() as tx:
        out = compute_kpis(tx, p.tenant_id, parse_since(since, days, tx.clock()), calls, space=svc.pipeline.space)
        tx.audit("kpi.read", actor=p.actor, tenant_id=p.tenant_id)
    return {"tenant": p.tenant, **out}


@router.post("/v1/console/complaints", status_code=status.HTTP_201_CREATED)
def record_complaint(
    body: ComplaintIn, p: ApiPrincipal = Depends(_SECURITY), svc: AppServices = Depends(get_services)
) -> dict[str, Any]:
    """Record a genuine caller's complaint of being falsely rejected (an audit event; counted by the KPIs)."""
    details = {"call_id": body.call_id, "note": body.note}
    with svc.store.transaction() as tx:
        if body.speaker:
            spk = tx.require_speaker(p.tenant_id, body.speaker)
            tx.audit(COMPLAINT_ACTION, actor=p.actor, speaker=spk, details=details)
        else:
            tx.audit(COMPLAINT_ACTION, actor=p.actor, tenant_id=p.tenant_id, details=details)
    return {"recorded": True}


@router.get("/v1/console/audit")
def recent_audit(
    limit: int = Query(100, ge=1, le=1000),
    p: ApiPrincipal = Depends(_SECURITY),
    svc: AppServices = Depends(get_services),
) -> list[dict[str, Any]]:
    """This tenant's newest audit events first (details hold no biometric data)."""
    with svc.store.transaction() as tx:
        rows = (
            tx.session.execute(
                select(AuditEvent)
                .where(AuditEvent.tenant_id == p.tenant_id)
                .order_by(AuditEvent.seq.desc())
                .limit(limit)
            )
            .scalars()
            .all()
        )
        return [
            {"seq": r.seq, "ts": r.ts.isoformat(), "actor": r.actor, "action": r.action, "subject": r.subject,
             "outcome": r.outcome, "details": json.loads(r.details or "{}")}
            for r in rows
        ]  # fmt: skip
