"""Request limits and request metrics as one pure-ASGI middleware; in-flight tracking for graceful shutdown.

- Size: a declared ``Content-Length`` over the limit is refused before the body is read; a body that grows past
  it while streaming (chunked) is refused when it does.
- Time: a request that has not produced its response within ``timeout_s`` (slow uploads, waiting in the audio
  queue) gets 503 ``request-timeout``, and its audio work will not run. Once that work has *started* the limit
  no longer applies: the work writes to the store (an enrolment, an attempt counted toward lockout), so the client
  gets its real result rather than a 503 for something that was done (:func:`guarded`, :class:`Deadline`).
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
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voiceauth.api.metrics import ApiMetrics
from voiceauth.api.problems import PROBLEM_JSON, ApiProblem, problem_type

__all__ = ["Deadline", "Drain", "DrainMiddleware", "LimitsMiddleware", "guarded"]

T = TypeVar("T")


class Deadline:
    """One request's time limit, raced safely against the start of its audio work (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = False
        self.expired = False

    def expire(self) -> bool:
        """At the deadline: True (the request is refused) unless the work already started."""
        with self._lock:
            self.expired = not self.started
            return self.expired

    def start(self) -> bool:
        """On the worker thread, before the work: False when the request was already refused."""
        with self._lock:
            self.started = not self.expired
            return self.started


class RequestExpired(Exception):
    """The request was answered 503 before its audio work could start; the work is skipped."""


_deadline: ContextVar[Deadline | None] = ContextVar("voiceauth_request_deadline", default=None)


def guarded(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` bound to the current request's deadline: it runs only if the request was not refused meanwhile,
    and once it runs the request is no longer timed out (call where the work is handed to a thread)."""
    deadline = _deadline.get()
    if deadline is None:
        return fn

    def run(*args: object) -> T:
        if not deadline.start():
            raise RequestExpired("the request timed out before its audio work started")
        return fn(*args)

    return run


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

        deadline = Deadline()
        token = _deadline.set(deadline)
        task = asyncio.current_task()
        refused = False

        def at_deadline() -> None:
            nonlocal refused
            if task is not None and deadline.expire():
                refused = True
                task.cancel()

        timer = asyncio.get_running_loop().call_later(self.timeout_s, at_deadline)
        try:
            await self.app(scope, limited_receive, tracking_send)
        except asyncio.CancelledError:
            if not refused:
                raise
            assert task is not None
            task.uncancel()
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
            timer.cancel()
            _deadline.reset(token)
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
