"""The WebSocket call loop: frames in -> serializer -> call handler -> serializer -> frames out. Knows no provider.

One coroutine per call. Every way a call can go wrong (bad JSON, unknown events, base64 garbage, an oversized
frame, a client that goes quiet and never sends ``stop``, a disconnect mid-call, a handler error) ends *that* call
with a logged reason, still records its outcome, and never propagates: the server keeps serving the others.
CPU work (VAD, embedding) runs on the injected executor, serially per call, so the event loop stays responsive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from ivr.serializers.base import (
    AudioIn,
    CallStart,
    CallStop,
    DigitIn,
    Frame,
    HangupOut,
    MarkIn,
    OutEvent,
    ProtocolError,
    Reply,
    Serializer,
)
from voiceauth.errors import VoiceAuthError

__all__ = ["CallHandler", "CallRefused", "TransportLimits", "WebSocketLike", "serve_call"]

log = logging.getLogger(__name__)


class CallRefused(VoiceAuthError):
    """The call cannot be served (bad credentials, unknown tenant); ``reason`` goes to the protocol's hang-up."""

    code = "ivr-call-refused"

    def __init__(self, message: str, reason: str = "unauthorized") -> None:
        super().__init__(message)
        self.reason = reason


class WebSocketLike(Protocol):
    async def receive(self) -> Frame | None: ...  # None: the peer disconnected

    async def send(self, frame: Frame) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class CallHandler(Protocol):
    """The call logic behind one stream (see :class:`ivr.session.CallSession`). Sync: runs on the executor."""

    def opening(self) -> Sequence[OutEvent]: ...

    def on_audio(self, payload: bytes) -> Sequence[OutEvent]: ...

    def on_digit(self, digit: str) -> Sequence[OutEvent]: ...

    def on_mark(self, name: str) -> Sequence[OutEvent]: ...

    def end(self, reason: str) -> Sequence[OutEvent]: ...

    @property
    def finished(self) -> bool: ...


@dataclass(frozen=True)
class TransportLimits:
    max_frame_bytes: int = 65536
    idle_timeout_s: float = 10.0
    max_call_s: float = 900.0


async def serve_call(
    ws: WebSocketLike,
    serializer: Serializer,
    open_handler: Callable[[CallStart], Awaitable[CallHandler]],
    *,
    executor: Executor | None = None,
    limits: TransportLimits | None = None,
) -> str:
    """Run one call to its end; return the reason it ended (``stop``, ``disconnected``, ``protocol-error``...)."""
    lim = limits or TransportLimits()
    loop = asyncio.get_running_loop()
    handler: CallHandler | None = None
    reason = "stop"
    hangup = "completed"
    deadline = time.monotonic() + lim.max_call_s
    label = serializer.name

    async def run(fn: Callable[..., Sequence[OutEvent]], *args: object) -> None:
        outs = await loop.run_in_executor(executor, fn, *args)
        await send_events(outs)

    async def send_events(outs: Sequence[OutEvent]) -> None:
        for out in outs:
            for frame in serializer.serialize(out):
                await ws.send(frame)

    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                reason = "max-call-duration"
                break
            try:
                frame = await asyncio.wait_for(ws.receive(), timeout=min(lim.idle_timeout_s, remaining))
            except TimeoutError:
                reason = "idle-timeout"
                log.warning("%s call ended: no frame for %.1f s", label, lim.idle_timeout_s)
                break
            if frame is None:
                reason = "disconnected"
                break
            if len(frame) > lim.max_frame_bytes:
                reason, hangup = "oversized-frame", "error"
                log.warning("%s call ended: frame of %d bytes > %d", label, len(frame), lim.max_frame_bytes)
                break
            event = serializer.deserialize(frame)
            if event is None:
                continue
            if isinstance(event, Reply):
                for f in event.frames:
                    await ws.send(f)
                if event.then_close:
                    reason, hangup = "probe", ""
                    break
            elif isinstance(event, CallStart):
                handler = await open_handler(event)
                for f in event.ack:
                    await ws.send(f)
                await run(handler.opening)
            elif handler is None:
                raise ProtocolError(f"{type(event).__name__} before the call started")
            elif isinstance(event, AudioIn):
                await run(handler.on_audio, event.payload)
            elif isinstance(event, DigitIn):
                await run(handler.on_digit, event.digit)
            elif isinstance(event, MarkIn):
                await run(handler.on_mark, event.name)
            elif isinstance(event, CallStop):
                reason = event.reason
                break
            if handler is not None and handler.finished:
                reason = "flow-complete"
                break
    except asyncio.CancelledError:
        # the server is cancelling this connection: record the outcome here, synchronously, then let it go
        if handler is not None:
            try:
                handler.end("disconnected")
            except Exception:
                log.exception("%s call: could not record the outcome of a cancelled call", label)
        handler = None
        reason, hangup = "disconnected", ""
        raise
    except ProtocolError as exc:
        reason, hangup = "protocol-error", "error"
        log.warning("%s call ended: protocol error: %s", label, exc)
    except CallRefused as exc:
        reason, hangup = "refused", exc.reason
        log.warning("%s call refused: %s", label, exc)
    except (ConnectionError, RuntimeError, OSError) as exc:
        reason = "disconnected"
        log.info("%s call ended: connection lost (%s)", label, type(exc).__name__)
    except VoiceAuthError as exc:
        reason, hangup = "error", "error"
        log.warning("%s call ended: %s: %s", label, type(exc).__name__, exc)
    except Exception:  # a bug must end this call, not the server
        reason, hangup = "internal-error", "error"
        log.exception("%s call ended by an internal error", label)
    finally:
        if reason != "disconnected" or handler is not None:
            await _finish(ws, serializer, handler, reason, hangup, loop, executor, send_events)
    return reason


async def _finish(
    ws: WebSocketLike,
    serializer: Serializer,
    handler: CallHandler | None,
    reason: str,
    hangup: str,
    loop: asyncio.AbstractEventLoop,
    executor: Executor | None,
    send_events: Callable[[Sequence[OutEvent]], Awaitable[None]],
) -> None:
    try:
        outs: list[OutEvent] = []
        if handler is not None:
            outs.extend(await loop.run_in_executor(executor, handler.end, reason))
        if hangup:
            outs.append(HangupOut(hangup))
        if reason != "disconnected":
            await send_events(outs)
    except Exception as exc:  # the peer may already be gone; the outcome is recorded by handler.end
        log.info("%s call: could not send the closing frames (%s)", serializer.name, type(exc).__name__)
    try:
        await ws.close(1000 if hangup in ("completed", "") else 1011, reason[:100])
    except Exception:
        pass
    log.info("%s call ended: %s", serializer.name, reason)
