"""The transport hands audio to the call in blocks of the handler's ``audio_block_bytes``, in order with the other
events, and the audio gathered before the end of a call still reaches the handler before ``end``."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from ivr.serializers.base import CallStart, Frame, OutEvent
from ivr.serializers.l16 import L16Serializer
from ivr.transport import TransportLimits, serve_call


class Recorder:
    """A call handler that records what it was given."""

    def __init__(self, block: int) -> None:
        self.audio_block_bytes = block
        self.log: list[tuple[str, object]] = []
        self.finished = False

    def opening(self) -> Sequence[OutEvent]:
        return []

    def on_audio(self, payload: bytes) -> Sequence[OutEvent]:
        self.log.append(("audio", len(payload)))
        return []

    def on_digit(self, digit: str) -> Sequence[OutEvent]:
        self.log.append(("digit", digit))
        return []

    def on_mark(self, name: str) -> Sequence[OutEvent]:
        return []

    def end(self, reason: str) -> Sequence[OutEvent]:
        self.log.append(("end", reason))
        return []


class Socket:
    def __init__(self, frames: list[Frame | None], idle: bool = False) -> None:
        self.frames, self.idle = frames, idle

    async def receive(self) -> Frame | None:
        if self.frames:
            return self.frames.pop(0)
        if self.idle:
            await asyncio.sleep(10)
        return None

    async def send(self, frame: Frame) -> None:
        pass

    async def close(self, code: int = 1000, reason: str = "") -> None:
        pass


META = json.dumps({"content-type": "audio/l16;rate=8000", "call_id": "c1", "speaker_id": "x"})
FRAME = b"\x01\x00" * 160  # 20 ms at 8 kHz


def _run(frames: list[Frame | None], block: int, *, idle: bool = False) -> tuple[str, Recorder]:
    rec = Recorder(block)

    async def open_handler(start: CallStart) -> Recorder:
        return rec

    limits = TransportLimits(idle_timeout_s=0.2)
    reason = asyncio.run(serve_call(Socket(frames, idle), L16Serializer(), open_handler, limits=limits))
    return reason, rec


def test_audio_goes_in_blocks_and_other_events_flush_it_first() -> None:
    digit = json.dumps({"event": "dtmf", "digit": "5"})
    reason, rec = _run([META, *[FRAME] * 12, digit, *[FRAME] * 3, json.dumps({"event": "stop"})], block=1600)
    assert reason == "stop"
    assert rec.log == [
        ("audio", 1600),
        ("audio", 1600),
        ("audio", 640),  # the 2 frames before the digit, handed over before it
        ("digit", "5"),
        ("audio", 960),  # the rest before stop
        ("end", "stop"),
    ]


def test_without_a_block_size_every_frame_goes_alone() -> None:
    _, rec = _run([META, FRAME, FRAME, json.dumps({"event": "stop"})], block=0)
    assert rec.log == [("audio", 320), ("audio", 320), ("end", "stop")]


def test_audio_gathered_before_a_disconnect_or_an_idle_timeout_still_counts() -> None:
    reason, rec = _run([META, FRAME, FRAME, FRAME, None], block=1600)
    assert reason == "disconnected" and rec.log == [("audio", 960), ("end", "disconnected")]
    reason, rec = _run([META, FRAME], block=1600, idle=True)
    assert reason == "idle-timeout" and rec.log == [("audio", 320), ("end", "idle-timeout")]


class GatedSocket(Socket):
    """Gives the start, then reports the disconnect only once ``gate`` is set."""

    def __init__(self, gate: asyncio.Event) -> None:
        super().__init__([META])
        self.gate = gate

    async def receive(self) -> Frame | None:
        if self.frames:
            return self.frames.pop(0)
        await self.gate.wait()
        return None


def test_a_call_cancelled_while_its_end_waits_for_a_busy_worker_is_still_recorded() -> None:
    """Server shutdown or a client's hard close cancels the connection; the call's outcome must not be lost with the
    end() job that was still queued behind other calls' work in the shared worker pool."""
    rec = Recorder(block=0)
    busy = threading.Event()

    async def open_handler(start: CallStart) -> Recorder:
        return rec

    async def main() -> str:
        gate = asyncio.Event()
        with ThreadPoolExecutor(max_workers=1) as pool:
            task = asyncio.create_task(serve_call(GatedSocket(gate), L16Serializer(), open_handler, executor=pool))
            await asyncio.sleep(0.05)  # the call has opened
            pool.submit(busy.wait, 5)  # another call's work occupies the only worker
            gate.set()  # the caller hangs up: end() is queued behind that work
            await asyncio.sleep(0.05)
            task.cancel()
            try:
                return await task
            except asyncio.CancelledError:
                return "cancelled"
            finally:
                busy.set()

    assert asyncio.run(main()) == "cancelled"
    assert rec.log == [("end", "disconnected")]
