"""IVR call outcomes in the store (table ``calls``): one row per (tenant, call id), written as the call goes.

A row holds what the contact centre may see (decision, net speech, when it was decided, how the call ended) and,
in ``details``, what only security staff may see (score, threshold, the internal decision) as canonical JSON;
never audio, embeddings or keys. Rows of a registered speaker are deleted with the speaker (erasure); a claim
of an unknown reference keeps the reference as given, like the verification attempt's audit event does.

Functions take a :class:`~voiceauth.store.repo.StoreTx`, so a caller decides the transaction.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from voiceauth.errors import StoreError
from voiceauth.store.models import CallRecord
from voiceauth.store.repo import StoreTx

__all__ = ["StoredCall", "calls_for_speaker", "get_call", "save_call"]

_PROTOCOL_MAX, _CALL_ID_MAX, _REF_MAX = 16, 128, 256


@dataclass(frozen=True)
class StoredCall:
    call_id: str
    protocol: str
    speaker_ref: str
    decision: str | None
    speech_seconds: float
    decided_at_ms: int | None
    method: str
    flow_outcome: str
    reason: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    details: Mapping[str, Any] = field(default_factory=dict)  # staff only


def _stored(r: CallRecord) -> StoredCall:
    try:
        details = json.loads(r.details or "{}")
    except json.JSONDecodeError:
        details = {}
    return StoredCall(
        call_id=r.call_id,
        protocol=r.protocol,
        speaker_ref=r.speaker_ref,
        decision=r.decision,
        speech_seconds=r.speech_seconds,
        decided_at_ms=r.decided_at_ms,
        method=r.method,
        flow_outcome=r.flow_outcome,
        reason=r.reason,
        started_at=r.started_at,
        ended_at=r.ended_at,
        details=details if isinstance(details, dict) else {},
    )


def save_call(tx: StoreTx, tenant_id: int, call: StoredCall) -> None:
    """Insert or update the row of ``(tenant_id, call.call_id)`` with ``call``'s values."""
    if not call.call_id or len(call.call_id) > _CALL_ID_MAX:
        raise StoreError(f"call id {call.call_id[:40]!r} is not valid; use 1-{_CALL_ID_MAX} characters")
    if len(call.protocol) > _PROTOCOL_MAX or len(call.speaker_ref) > _REF_MAX:
        raise StoreError(f"protocol {call.protocol[:20]!r} or speaker reference is longer than the store keeps")
    spk = tx.speaker(tenant_id, call.speaker_ref) if call.speaker_ref else None
    values: dict[str, Any] = {
        "protocol": call.protocol,
        "speaker_ref": call.speaker_ref,
        "speaker_id": spk.id if spk is not None else None,
        "decision": call.decision,
        "speech_seconds": float(call.speech_seconds),
        "decided_at_ms": call.decided_at_ms,
        "method": call.method[:16],
        "flow_outcome": call.flow_outcome[:32],
        "reason": call.reason[:64],
        "details": json.dumps(dict(call.details), sort_keys=True, separators=(",", ":"), default=str),
        "started_at": call.started_at,
        "ended_at": call.ended_at,
    }
    q = select(CallRecord).where(CallRecord.tenant_id == tenant_id, CallRecord.call_id == call.call_id)
    row = tx.session.execute(q).scalar_one_or_none()
    if row is None:
        try:
            with tx.session.begin_nested():
                tx.session.add(CallRecord(tenant_id=tenant_id, call_id=call.call_id, **values))
            return
        except IntegrityError:  # another worker inserted it first: update that row
            row = tx.session.execute(q).scalar_one()
    for k, v in values.items():
        setattr(row, k, v)
    tx.session.flush()


def get_call(tx: StoreTx, tenant_id: int, call_id: str) -> StoredCall | None:
    q = select(CallRecord).where(CallRecord.tenant_id == tenant_id, CallRecord.call_id == call_id)
    row = tx.session.execute(q).scalar_one_or_none()
    return _stored(row) if row is not None else None


def calls_for_speaker(tx: StoreTx, tenant_id: int, speaker_ref: str, *, limit: int = 50) -> list[StoredCall]:
    """The calls that claimed ``speaker_ref``, newest first."""
    q = (
        select(CallRecord)
        .where(CallRecord.tenant_id == tenant_id, CallRecord.speaker_ref == speaker_ref)
        .order_by(CallRecord.started_at.desc(), CallRecord.id.desc())
        .limit(max(1, limit))
    )
    return [_stored(r) for r in tx.session.execute(q).scalars()]
