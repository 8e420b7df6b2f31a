"""The WebSocket call loop: frames in -> serializer -> call handler -> serializer -> frames out. Knows no provider.

One coroutine per call. Audio frames (20 ms each on every platform) are gathered into blocks of the handler's
``audio_block_bytes`` before they go to a worker thread, so a call costs one thread hop per block rather than per
frame; any other event first hands over the audio gathered before it, so the handler sees everything in order.
Every way a call can go wrong (bad JSON, unknown events, base64 garbage, an oversized
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
    """The call logic behind one stream (see :class:`ivr.session.CallSession`). Sync: runs on the executor.

    A handler may define ``audio_block_bytes`` (int, read again after each call into the handler): audio is handed
    to :meth:`on_audio` in blocks of at least that many bytes (0 or absent: frame by frame).
    """

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
    audio: list[bytes] = []  # frames not yet handed to the handler
    audio_n = 0
    block = 0
    reason = "stop"
    hangup = "completed"
    deadline = time.monotonic() + lim.max_call_s
    label = serializer.name

    async def run(fn: Callable[..., Sequence[OutEvent]], *args: object) -> None:
        nonlocal block
        try:
            outs = await loop.run_in_executor(executor, fn, *args)
        except (ConnectionError, RuntimeError, OSError) as exc:
            # the handler's own failure (a file, the model...), not the connection's: it must not read as a hang-up
            raise _HandlerFailed(f"{type(exc).__name__}: {exc}") from exc
        block = int(getattr(handler, "audio_block_bytes", 0) or 0)  # the handler may change it as the call goes
        await send_events(outs)

    async def send_events(outs: Sequence[OutEvent]) -> None:
        for out in outs:
            for frame in serializer.serialize(out):
                await ws.send(frame)

    def take_audio() -> bytes:
        nonlocal audio_n
        data = audio[0] if len(audio) == 1 else b"".join(audio)
        audio.clear()
        audio_n = 0
        return data

    async def flush_audio() -> None:
        if audio and handler is not None:
            await run(handler.on_audio, take_audio())

    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                reason = "max-call-duration"
                break
            try:
                async with asyncio.timeout(min(lim.idle_timeout_s, remaining)):  # no extra task per frame
                    frame = await ws.receive()
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
                audio.append(event.payload)
                audio_n += len(event.payload)
                if audio_n >= block:
                    await flush_audio()
            elif isinstance(event, DigitIn):
                await flush_audio()
                await run(handler.on_digit, event.digit)
            elif isinstance(event, MarkIn):
                await flush_audio()
                await run(handler.on_mark, event.name)
            elif isinstance(event, CallStop):
                await flush_audio()
                reason = event.reason
                break
            if handler is not None and handler.finished:
                reason = "flow-complete"
                break
    except asyncio.CancelledError:
        # the server is cancelling this connection: record the outcome here, synchronously, then let it go
        if handler is not None:
            _end_now(handler, "disconnected", label, take_audio() if audio else b"")
        handler = None
        reason, hangup = "disconnected", ""
        raise
    except ProtocolError as exc:
        reason, hangup = "protocol-error", "error"
        log.warning("%s call ended: protocol error: %s", label, exc)
    except CallRefused as exc:
        reason, hangup = "refused", exc.reason
        log.warning("%s call refused: %s", label, exc)
    except _HandlerFailed:
        reason, hangup = "internal-error", "error"
        log.exception("%s call ended by an error in its handler", label)
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
            rest = take_audio() if audio and handler is not None else b""
            await _finish(ws, serializer, handler, reason, hangup, loop, executor, send_events, rest)
    return reason


class _HandlerFailed(Exception):
    """An OSError, RuntimeError or ConnectionError raised by the call handler (on the executor): told apart from the
    same types raised by the socket, which mean the peer went away."""


def _end_now(handler: CallHandler, reason: str, label: str, rest: bytes = b"") -> None:
    """End a call on this thread so that its outcome is recorded even when the connection is being cancelled."""
    try:
        if rest:
            handler.on_audio(rest)
        handler.end(reason)
    except Exception:
        log.exception("%s call: could not record the outcome of a cancelled call", label)


async def _finish(
    ws: WebSocketLike,
    serializer: Serializer,
    handler: CallHandler | None,
    reason: str,
    hangup: str,
    loop: asyncio.AbstractEventLoop,
    executor: Executor | None,
    send_events: Callable[[Sequence[OutEvent]], Awaitable[None]],
    rest: bytes = b"",
) -> None:
    try:
        outs: list[OutEvent] = []
        if handler is not None:
            try:
                if rest:  # audio gathered before the end still counts (e.g. the last words before a hang-up)
                    try:
                        outs.extend(await loop.run_in_executor(executor, handler.on_audio, rest))
                    except Exception as exc:  # still end the call and record its outcome
                        log.info("%s call: the last audio block was not used (%s)", serializer.name, type(exc).__name__)
                outs.extend(await loop.run_in_executor(executor, handler.end, reason))
            except asyncio.CancelledError:
                # cancelled while the worker had the end queued or running (server shutdown, client gone): a queued
                # job is dropped with the cancel, so end here; a second end() of one call records nothing new
                _end_now(handler, reason, serializer.name)
                raise
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
