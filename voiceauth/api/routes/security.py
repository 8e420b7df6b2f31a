"""Security staff: thresholds and operating points, the fraudster watchlist, audit events and KPIs."""

from __future__ import annotations

import datetime as dt
import json

from fastapi import APIRouter, Depends, File, Form, Path, Query, Response, UploadFile, status
from sqlalchemy import func, select

from voiceauth.api.deps import get_services, require
from voiceauth.api.routes.audio import read_upload
from voiceauth.api.schemas import (
    AuditEventOut,
    AuditPage,
    ChainOut,
    KpiOut,
    OperatingPointIn,
    SpoofThresholdIn,
    SpoofThresholdOut,
    ThresholdIn,
    ThresholdsOut,
    WatchlistEntryOut,
)
from voiceauth.api.services import AppServices
from voiceauth.errors import NotFound
from voiceauth.store.keys import ApiPrincipal, Role
from voiceauth.store.models import (
    AuditEvent,
    EnrollmentUtterance,
    Speaker,
    SpeakerStatus,
    Tenant,
    VerificationAttempt,
    Voiceprint,
    WatchlistEntry,
)
from voiceauth.store.repo import StoreTx
from voiceauth.verification import SPOOF_THRESHOLD

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["security"])
_SECURITY = require(Role.SECURITY)
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"


def _thresholds(tx: StoreTx, svc: AppServices, tenant_id: int) -> ThresholdsOut:
    t = tx.session.get(Tenant, tenant_id)
    assert t is not None
    defaults = dict(svc.pipeline.verifier.operating_points)
    overrides = tx.thresholds(tenant_id)
    spoof = overrides.pop(SPOOF_THRESHOLD, None)  # log-odds, not an operating point on the 0-100 scale
    cm = svc.pipeline.countermeasure
    spoof_default = cm.threshold if cm is not None else (svc.settings.antispoof_threshold or 0.0)
    return ThresholdsOut(
        operating_point=t.operating_point or svc.pipeline.verifier.policy.operating_point,
        defaults=defaults,
        overrides=overrides,
        effective={**defaults, **overrides},
        spoof=SpoofThresholdOut(
            mode=svc.settings.antispoof_mode,
            default=spoof_default,
            override=spoof,
            effective=spoof_default if spoof is None else spoof,
        ),
    )


@router.get("/thresholds", response_model=ThresholdsOut, tags=["thresholds"])
def get_thresholds(p: ApiPrincipal = Depends(_SECURITY), svc: AppServices = Depends(get_services)) -> ThresholdsOut:
    """Named operating points (calibrated 0-100 thresholds): shipped defaults, this tenant's overrides."""
    with svc.store.transaction() as tx:
        tx.audit("threshold.read", actor=p.actor, tenant_id=p.tenant_id)
        return _thresholds(tx, svc, p.tenant_id)


@router.put("/thresholds/spoof", response_model=ThresholdsOut, tags=["thresholds"])
def set_spoof_threshold(
    body: SpoofThresholdIn, p: ApiPrincipal = Depends(_SECURITY), svc: AppServices = Depends(get_services)
) -> ThresholdsOut:
    """Set this tenant's anti-spoofing threshold (the countermeasure's spoof score: for the shipped telephone
    network a log-likelihood ratio; audited with old and new value).

    Raise it where genuine callers are refused as spoofs; `voiceauth spoof-eval --target-bpcer` measures the value
    for a target share of genuine callers flagged on the tenant's own recordings (benchmarks/results/antispoof.md)."""
    with svc.store.transaction() as tx:
        tx.set_threshold(p.tenant_id, SPOOF_THRESHOLD, body.value, actor=p.actor)
        return _thresholds(tx, svc, p.tenant_id)


@router.put("/thresholds/{name}", response_model=ThresholdsOut, tags=["thresholds"])
def set_threshold(
    body: ThresholdIn,
    name: str = Path(pattern=_NAME, description="Operating point name, e.g. `high_security`."),
    p: ApiPrincipal = Depends(_SECURITY),
    svc: AppServices = Depends(get_services),
) -> ThresholdsOut:
    """Set this tenant's value of a named threshold (audited with old and new value)."""
    with svc.store.transaction() as tx:
        tx.set_threshold(p.tenant_id, name, body.value, actor=p.actor)
        return _thresholds(tx, svc, p.tenant_id)


@router.put("/operating-point", response_model=ThresholdsOut, tags=["thresholds"])
def set_operating_point(
    body: OperatingPointIn, p: ApiPrincipal = Depends(_SECURITY), svc: AppServices = Depends(get_services)
) -> ThresholdsOut:
    """Choose which named threshold this tenant's verifications use (null = the service default)."""
    with svc.store.transaction() as tx:
        known = (set(svc.pipeline.verifier.operating_points) | set(tx.thresholds(p.tenant_id))) - {SPOOF_THRESHOLD}
        if body.name is not None and body.name not in known:
            raise NotFound(f"operating point {body.name!r} is not defined; known: {', '.join(sorted(known))}")
        t = tx.session.get(Tenant, p.tenant_id)
        assert t is not None
        old, t.operating_point = t.operating_point, body.name
        tx.audit("operating_point.set", actor=p.actor, tenant_id=p.tenant_id, details={"old": old, "new": body.name})
        return _thresholds(tx, svc, p.tenant_id)


@router.get("/watchlist", response_model=list[WatchlistEntryOut], tags=["watchlist"])
def list_watchlist(
    p: ApiPrincipal = Depends(_SECURITY), svc: AppServices = Depends(get_services)
) -> list[WatchlistEntryOut]:
    with svc.store.transaction() as tx:
        rows = tx.session.execute(
            select(WatchlistEntry.id, WatchlistEntry.label, WatchlistEntry.created_at)
            .where(WatchlistEntry.tenant_id == p.tenant_id)
            .order_by(WatchlistEntry.id)
        ).all()
        tx.audit("watchlist.read", actor=p.actor, tenant_id=p.tenant_id)
        return [WatchlistEntryOut(id=r.id, label=r.label, created_at=r.created_at) for r in rows]


@router.post("/watchlist", status_code=status.HTTP_201_CREATED, response_model=WatchlistEntryOut, tags=["watchlist"])
async def add_watchlist(
    audio: UploadFile = File(description="A recording of the known fraudster."),
    label: str = Form(min_length=1, max_length=256),
    p: ApiPrincipal = Depends(_SECURITY),
    svc: AppServices = Depends(get_services),
) -> WatchlistEntryOut:
    """Add a known fraudster's voice; every later enrolment and verification is searched against it."""
    data = await read_upload(audio, svc.settings.max_upload_bytes)

    def work() -> WatchlistEntryOut:
        utt = svc.utterance(data, {})
        emb = svc.pipeline.embed(utt)
        with svc.store.transaction() as tx:
            entry_id = tx.add_watchlist_entry(p.tenant_id, label, emb, actor=p.actor, space=svc.pipeline.space)
            row = tx.session.get(WatchlistEntry, entry_id)
            assert row is not None
            return WatchlistEntryOut(id=row.id, label=row.label, created_at=row.created_at)

    return await svc.run_audio(work)


@router.delete(
    "/watchlist/{entry_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, tags=["watchlist"]
)
def remove_watchlist(
    entry_id: int, p: ApiPrincipal = Depends(_SECURITY), svc: AppServices = Depends(get_services)
) -> Response:
    with svc.store.transaction() as tx:
        tx.remove_watchlist_entry(p.tenant_id, entry_id, actor=p.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/audit/events", response_model=AuditPage, tags=["audit"])
def audit_events(
    after_seq: int = Query(0, ge=0, le=2**62, description="Return events after this sequence number."),
    limit: int = Query(100, ge=1, le=1000),
    p: ApiPrincipal = Depends(_SECURITY),
    svc: AppServices = Depends(get_services),
) -> AuditPage:
    """This tenant's audit events in order (subjects are pseudonyms; details never hold biometric data)."""
    with svc.store.transaction() as tx:
        rows = (
            tx.session.execute(
                select(AuditEvent)
                .where(AuditEvent.tenant_id == p.tenant_id, AuditEvent.seq > after_seq)
                .order_by(AuditEvent.seq)
                .limit(limit)
            )
            .scalars()
            .all()
        )
        events = [
            AuditEventOut(
                seq=r.seq,
                ts=r.ts,
                actor=r.actor,
                action=r.action,
                subject=r.subject,
                outcome=r.outcome,
                details=json.loads(r.details or "{}"),
            )
            for r in rows
        ]
        tx.audit("audit.export", actor=p.actor, tenant_id=p.tenant_id, details={"events": len(events)})
    nxt = events[-1].seq if len(events) == limit else None
    return AuditPage(events=events, next_after_seq=nxt)


@router.get("/audit/verify", response_model=ChainOut, tags=["audit"])
def audit_verify(p: ApiPrincipal = Depends(_SECURITY), svc: AppServices = Depends(get_services)) -> ChainOut:
    """Recompute the audit hash chain (detects any edited or removed event)."""
    report = svc.store.verify_audit_chain()
    return ChainOut(ok=report.ok, events=report.events, first_bad_seq=report.first_bad_seq, reason=report.reason)


def _count(tx: StoreTx, q: object) -> int:
    return int(tx.session.execute(q).scalar_one())  # type: ignore[call-overload]


@router.get("/kpis", response_model=KpiOut, tags=["kpis"])
def kpis(
    days: int = Query(30, ge=1, le=3650, description="Window for attempt counts."),
    p: ApiPrincipal = Depends(_SECURITY),
    svc: AppServices = Depends(get_services),
) -> KpiOut:
    """Counts for this tenant: speakers, enrolled, opted out, verifications by decision, watchlist hits."""
    with svc.store.transaction() as tx:
        since = tx.clock() - dt.timedelta(days=days)
        tid = p.tenant_id
        spk = select(func.count()).select_from(Speaker).where(Speaker.tenant_id == tid)
        by_decision = dict(
            tx.session.execute(
                select(VerificationAttempt.decision, func.count())
                .where(VerificationAttempt.tenant_id == tid, VerificationAttempt.created_at >= since)
                .group_by(VerificationAttempt.decision)
            ).all()
        )
        hits = (
            select(func.count())
            .select_from(VerificationAttempt)
            .where(
                VerificationAttempt.tenant_id == tid,
                VerificationAttempt.created_at >= since,
                VerificationAttempt.watchlist_entry_id.is_not(None),
            )
        )
        enrolled = select(func.count()).select_from(Voiceprint).join(Speaker).where(Speaker.tenant_id == tid)
        utts = select(func.count()).select_from(EnrollmentUtterance).join(Speaker).where(Speaker.tenant_id == tid)
        decided = by_decision.get("ACCEPT", 0) + by_decision.get("REJECT", 0)
        out = KpiOut(
            since=since,
            speakers=_count(tx, spk),
            enrolled=_count(tx, enrolled),
            opted_out=_count(tx, spk.where(Speaker.status == SpeakerStatus.OPTED_OUT.value)),
            voice_disabled=_count(tx, spk.where(Speaker.voice_disabled.is_(True))),
            verifications={str(k): int(v) for k, v in by_decision.items()},
            accept_rate=None if decided == 0 else round(by_decision.get("ACCEPT", 0) / decided, 4),
            watchlist_hits=_count(tx, hits),
            enrollment_utterances=_count(tx, utts),
        )
        tx.audit("kpi.read", actor=p.actor, tenant_id=tid)
        return out
