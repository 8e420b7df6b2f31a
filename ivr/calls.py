"""Call outcomes: what every call reached, kept for ``GET /v1/calls`` and posted to the contact centre's webhook.

:class:`CallRegistry` keeps the newest ``capacity`` outcomes in memory (the verification attempts themselves, with
their scores, are in the store's audit trail). :meth:`CallOutcome.public` is what telephony keys see: decisions
and timings, never scores.
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

__all__ = ["CallOutcome", "CallRegistry", "WebhookNotifier", "sign_webhook"]

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
