"""Call outcomes: what every call reached, kept for ``GET /v1/calls`` and posted to the contact centre's webhook.

:class:`StoreCallLog` writes every outcome to the store's ``calls`` table (off the call's thread, in order), so
``GET /v1/calls`` answers from any worker process; :class:`CallRegistry` keeps this process's newest outcomes in
memory (the console's live KPIs read it; a service without a store answers from it). :meth:`CallOutcome.public` is
what telephony keys see: decisions and timings, never scores.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from voiceauth.errors import NotFound, VoiceAuthError
from voiceauth.store.calls import StoredCall, calls_for_speaker, get_call, save_call
from voiceauth.store.repo import Store

__all__ = ["CallOutcome", "CallRegistry", "StoreCallLog", "WebhookNotifier", "sign_webhook"]

log = logging.getLogger(__name__)


@dataclass
class CallOutcome:
    call_id: str
    tenant: str
    protocol: str
    speaker_id: str = ""  # the claimed customer reference
    decision: str | None = None  # telephony decision (NOT_ENROLLED reads REJECT); None while undecided
    speech_seconds: float = 0.0
    decided_at_ms: int | None = None  # ms of call audio when decided
    method: str = ""  # how the caller was verified: voice | pin | ""
    flow_outcome: str = ""  # verified | transferred | failed | ""
    end_reason: str = ""  # stop | disconnected | protocol-error | idle-timeout | ...
    started_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())
    ended_at: str | None = None
    staff: dict[str, Any] = field(default_factory=dict)  # score etc: security/admin only

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("staff")
        out.pop("tenant")
        return out

    def full(self) -> dict[str, Any]:
        out = self.public()
        out.update(self.staff)
        return out

    def stored(self) -> StoredCall:
        return StoredCall(
            call_id=self.call_id,
            protocol=self.protocol,
            speaker_ref=self.speaker_id,
            decision=self.decision,
            speech_seconds=self.speech_seconds,
            decided_at_ms=self.decided_at_ms,
            method=self.method,
            flow_outcome=self.flow_outcome,
            reason=self.end_reason,
            started_at=dt.datetime.fromisoformat(self.started_at),
            ended_at=dt.datetime.fromisoformat(self.ended_at) if self.ended_at else None,
            details=dict(self.staff),
        )

    @classmethod
    def from_stored(cls, tenant: str, c: StoredCall) -> CallOutcome:
        return cls(
            call_id=c.call_id,
            tenant=tenant,
            protocol=c.protocol,
            speaker_id=c.speaker_ref,
            decision=c.decision,
            speech_seconds=c.speech_seconds,
            decided_at_ms=c.decided_at_ms,
            method=c.method,
            flow_outcome=c.flow_outcome,
            end_reason=c.reason,
            started_at=c.started_at.isoformat(),
            ended_at=c.ended_at.isoformat() if c.ended_at else None,
            staff=dict(c.details),
        )


class CallRegistry:
    """Thread-safe, bounded, newest-first store of call outcomes."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._calls: OrderedDict[tuple[str, str], CallOutcome] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, outcome: CallOutcome) -> None:
        with self._lock:
            key = (outcome.tenant, outcome.call_id)
            self._calls[key] = outcome
            self._calls.move_to_end(key)
            while len(self._calls) > self.capacity:
                self._calls.popitem(last=False)

    def get(self, tenant: str, call_id: str) -> CallOutcome | None:
        with self._lock:
            return self._calls.get((tenant, call_id))

    def for_speaker(self, tenant: str, speaker_id: str, limit: int = 50) -> list[CallOutcome]:
        with self._lock:
            found = [c for (t, _), c in reversed(self._calls.items()) if t == tenant and c.speaker_id == speaker_id]
        return found[:limit]

    def for_tenant(self, tenant: str) -> list[CallOutcome]:
        """A consistent snapshot of one tenant's call outcomes held in memory, oldest first."""
        with self._lock:
            return [c for (t, _), c in self._calls.items() if t == tenant]


class StoreCallLog:
    """Call outcomes in the store. :meth:`put` queues a snapshot and returns at once (a call's decision is never
    held up by a database write); one writer thread applies them in order. Reads wait for this process's queued
    writes first, so a call's own process always reads what it wrote."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr-calls")
        self._lock = threading.Lock()
        self._last: Any = None

    def put(self, outcome: CallOutcome) -> None:
        snapshot = (outcome.tenant, outcome.stored())  # copied now: the session keeps changing its outcome
        with self._lock:
            self._last = self._pool.submit(self._write, *snapshot)

    def flush(self, timeout: float = 10.0) -> None:
        with self._lock:
            last = self._last
        if last is not None:
            last.result(timeout)

    def get(self, tenant: str, call_id: str) -> CallOutcome | None:
        self.flush()
        with self.store.transaction() as tx:
            found = get_call(tx, tx.tenant(tenant).id, call_id)
        return CallOutcome.from_stored(tenant, found) if found is not None else None

    def for_speaker(self, tenant: str, speaker_id: str, limit: int = 50) -> list[CallOutcome]:
        self.flush()
        with self.store.transaction() as tx:
            found = calls_for_speaker(tx, tx.tenant(tenant).id, speaker_id, limit=limit)
        return [CallOutcome.from_stored(tenant, c) for c in found]

    def _write(self, tenant: str, call: StoredCall) -> None:
        try:
            with self.store.transaction() as tx:
                save_call(tx, tx.tenant(tenant).id, call)
        except NotFound:
            log.warning("call %s: tenant %r is not in the store; outcome not persisted", call.call_id, tenant)
        except (VoiceAuthError, OSError) as exc:
            log.warning("call %s: outcome not persisted: %s", call.call_id, exc)
        except Exception:  # a database error must not take the writer down
            log.exception("call %s: outcome not persisted", call.call_id)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def sign_webhook(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookNotifier:
    """Posts outcomes as JSON to one URL, off the call's thread; ``X-Voiceauth-Signature`` when a secret is set."""

    def __init__(self, url: str | None, secret: bytes | None = None, *, timeout_s: float = 3.0) -> None:
        self.url = url
        self.secret = secret
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr-webhook") if url else None

    def submit(self, outcome: CallOutcome) -> None:
        if self._pool is None:
            return
        self._pool.submit(self._post, outcome.public())

    def _post(self, payload: dict[str, Any]) -> None:
        assert self.url is not None
        body = json.dumps({"type": "call.outcome", "call": payload}).encode()
        headers = {"content-type": "application/json"}
        if self.secret:
            headers["x-voiceauth-signature"] = sign_webhook(self.secret, body)
        try:
            r = httpx.post(self.url, content=body, headers=headers, timeout=self.timeout_s)
            if r.status_code >= 300:
                log.warning("webhook for call %s answered %d", payload.get("call_id"), r.status_code)
        except httpx.HTTPError as exc:
            log.warning("webhook for call %s failed: %s", payload.get("call_id"), type(exc).__name__)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
