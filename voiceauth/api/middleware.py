"""Request limits and request metrics as one pure-ASGI middleware; in-flight tracking for graceful shutdown.

- Size: a declared ``Content-Length`` over the limit is refused before the body is read; a body that grows past
  it while streaming (chunked) is refused when it does.
- Time: a request that has not produced its response within ``timeout_s`` (slow uploads included) gets 503;
  work already handed to the audio thread pool finishes in the background and its result is dropped.
- Metrics: latency by route template (not raw path, so cardinality stays bounded), method and status.
- Drain (:class:`DrainMiddleware`): counts in-flight HTTP requests and WebSocket calls; once :meth:`Drain.start`
  was called (``voiceauth serve`` on SIGTERM) new calls are refused at the handshake (HTTP 403, so the telephony
  platform tries another worker), ``/readyz`` answers 503, and the server waits for the count to reach zero.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voiceauth.api.metrics import ApiMetrics
from voiceauth.api.problems import PROBLEM_JSON, ApiProblem, problem_type

__all__ = ["Drain", "DrainMiddleware", "LimitsMiddleware"]


async def _send_problem(send: Send, status: int, code: str, detail: str, title: str) -> None:
    body = json.dumps(
        {"type": problem_type(code), "title": title, "status": status, "detail": detail, "code": code}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class LimitsMiddleware:
    def __init__(self, app: ASGIApp, *, max_body: int, timeout_s: float, metrics: ApiMetrics) -> None:
        self.app = app
        self.max_body = max_body
        self.timeout_s = timeout_s
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        state: dict[str, Any] = {"status": 500, "started": False, "received": 0}
        too_large = f"the request body exceeds {self.max_body} bytes; send at most {self.max_body} bytes"
        length = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        try:
            if length is not None and int(length) > self.max_body:
                state["status"] = 413
                await _send_problem(send, 413, "request-too-large", too_large, "Content too large")
                return
        except ValueError:
            state["status"] = 400
            await _send_problem(send, 400, "bad-content-length", "Content-Length is not a number", "Bad request")
            return

        async def limited_receive() -> Message:
            msg = await receive()
            if msg["type"] == "http.request":
                state["received"] += len(msg.get("body", b""))
                if state["received"] > self.max_body:
                    raise ApiProblem(413, "request-too-large", too_large)
            return msg

        async def tracking_send(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                state["started"], state["status"] = True, msg["status"]
            await send(msg)

        try:
            async with asyncio.timeout(self.timeout_s):
                await self.app(scope, limited_receive, tracking_send)
        except TimeoutError:
            if not state["started"]:
                state["status"] = 503
                await _send_problem(
                    send,
                    503,
                    "request-timeout",
                    f"the request did not complete within {self.timeout_s:g} s; retry later",
                    "Service unavailable",
                )
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.request_latency.labels(template, scope.get("method", ""), str(state["status"])).observe(
                time.perf_counter() - t0
            )


class Drain:
    """This process's in-flight HTTP requests and calls, and whether it is shutting down (thread-safe)."""

    def __init__(self) -> None:
        self.draining = False
        self.requests = 0
        self.calls = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    def start(self) -> None:
        """Stop taking new calls (requests already admitted and calls in progress go on)."""
        self.draining = True

    def _add(self, kind: str, n: int) -> None:
        with self._lock:
            setattr(self, kind, getattr(self, kind) + n)
            if self.requests == 0 and self.calls == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until nothing is in flight or ``timeout_s`` passed; True when idle."""
        with self._lock:
            return self._idle.wait_for(lambda: self.requests == 0 and self.calls == 0, timeout=timeout_s)


class DrainMiddleware:
    def __init__(self, app: ASGIApp, *, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = {"http": "requests", "websocket": "calls"}.get(scope["type"])
        if kind is None:
            await self.app(scope, receive, send)
            return
        if kind == "calls" and self.drain.draining:
            msg = await receive()  # websocket.connect
            if msg["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 1013, "reason": "worker shutting down; retry"})
            return
        self.drain._add(kind, 1)
        try:
            await self.app(scope, receive, send)
        finally:
            self.drain._add(kind, -1)
