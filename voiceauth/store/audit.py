"""Append-only, hash-chained audit events.

Each event's hash is ``sha256(prev_hash || canonical JSON of its fields)``; the first event chains from 64 zeros.
``seq`` is assigned here (1, 2, 3, ... with no gaps) under a lock on the single ``audit_head`` row, which also
records the newest (seq, hash). Every writer, in every worker process, takes that row lock (``SELECT ... FOR
UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises writers) before reading the head, so
the chain never forks; the very first event creates the row with ``INSERT ... ON CONFLICT DO NOTHING`` so two
first writers cannot both create it. With the head, :func:`verify_chain` detects an edited row (hash mismatch), a
removed row in the middle (seq gap / broken link) and removed newest rows (head mismatch).

Details are small JSON objects of ids, decisions and scores: never audio, embeddings, keys or external references
(subjects are pseudonyms, see :meth:`voiceauth.store.repo.StoreTx.pseudonym`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from voiceauth.store.models import AuditEvent, AuditHead

__all__ = ["GENESIS", "ChainReport", "append_event", "event_hash", "verify_chain"]

GENESIS = "0" * 64


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def event_hash(
    prev_hash: str,
    *,
    seq: int,
    ts: dt.datetime,
    tenant_id: int | None,
    actor: str,
    action: str,
    subject: str,
    outcome: str,
    details: str,
) -> str:
    body = _canonical(
        {
            "seq": seq,
            "ts": ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "tenant_id": tenant_id,
            "actor": actor,
            "action": action,
            "subject": subject,
            "outcome": outcome,
            "details": details,
        }
    )
    return hashlib.sha256((prev_hash + "\n" + body).encode("utf-8")).hexdigest()


def append_event(
    session: Session,
    *,
    ts: dt.datetime,
    actor: str,
    action: str,
    tenant_id: int | None = None,
    subject: str = "",
    outcome: str = "",
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction (it commits or rolls back with the change it records)."""
    head = _locked_head(session)
    ts = ts.astimezone(dt.UTC)
    detail_text = _canonical(dict(details or {}))
    seq = head.seq + 1
    h = event_hash(
        head.hash,
        seq=seq,
        ts=ts,
        tenant_id=tenant_id,
        actor=actor,
        action=action,
        subject=subject,
        outcome=outcome,
        details=detail_text,
    )
    ev = AuditEvent(
        seq=seq,
        ts=ts,
        tenant_id=tenant_id,
        actor=actor,
        action=action,
        subject=subject,
        outcome=outcome,
        details=detail_text,
        prev_hash=head.hash,
        hash=h,
    )
    session.add(ev)
    head.seq, head.hash = seq, h
    session.flush()
    return ev


def _locked_head(session: Session) -> AuditHead:
    """The ``audit_head`` row, locked for this transaction (created at genesis if missing, race-free)."""
    q = select(AuditHead).where(AuditHead.id == 1).with_for_update()
    head = session.execute(q).scalar_one_or_none()
    if head is not None:
        return head
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(AuditHead).values(id=1, seq=0, hash=GENESIS).on_conflict_do_nothing(index_elements=["id"]))
    return session.execute(q).scalar_one()


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int
    first_bad_seq: int | None = None
    reason: str = ""


def verify_chain(session: Session, batch: int = 2000) -> ChainReport:
    """Recompute the whole chain; report the first row that does not verify."""
    prev_hash, expected_seq, count = GENESIS, 1, 0
    last_seq = 0
    while True:
        rows = (
            session.execute(select(AuditEvent).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(batch))
            .scalars()
            .all()
        )
        if not rows:
            break
        for ev in rows:
            if ev.seq != expected_seq:
                return ChainReport(False, count, expected_seq, f"event {expected_seq} is missing")
            if ev.prev_hash != prev_hash:
                return ChainReport(False, count, ev.seq, f"event {ev.seq} does not link to event {ev.seq - 1}")
            h = event_hash(
                prev_hash,
                seq=ev.seq,
                ts=ev.ts,
                tenant_id=ev.tenant_id,
                actor=ev.actor,
                action=ev.action,
                subject=ev.subject,
                outcome=ev.outcome,
                details=ev.details,
            )
            if h != ev.hash:
                return ChainReport(False, count, ev.seq, f"event {ev.seq} was altered (hash mismatch)")
            prev_hash, expected_seq, count, last_seq = h, expected_seq + 1, count + 1, ev.seq
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.seq, head.hash) if head is not None else (0, GENESIS)
    if head_seq != count or head_hash != prev_hash:
        return ChainReport(False, count, count + 1, f"the newest events after {count} were removed (head {head_seq})")
    return ChainReport(True, count)
