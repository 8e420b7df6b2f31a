"""Request limits and request metrics as one pure-ASGI middleware.

- Size: a declared ``Content-Length`` over the limit is refused before the body is read; a body that grows past
  it while streaming (chunked) is refused when it does.
- Time: a request that has not produced its response within ``timeout_s`` (slow uploads included) gets 503;
  work already handed to the audio thread pool finishes in the background and its result is dropped.
- Metrics: latency by route template (not raw path, so cardinality stays bounded), method and status.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voiceauth.api.metrics import ApiMetrics
from voiceauth.api.problems import PROBLEM_JSON, ApiProblem, problem_type

__all__ = ["LimitsMiddleware"]


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
