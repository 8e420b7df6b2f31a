"""The cause of the kill -9 fault test's undecided call, pinned down without a cluster.

Two worker processes share one prompt folder and make the same prompt at the same moment (their first calls). Both
used to run espeak-ng into one temporary name and write the cached WAV in place, so one could read the other's
half-written file: a truncated prompt, or a read error in the call's greeting; and the transport took that error
(a RuntimeError from the handler) for a hang-up, closing the call normally with no decision and no error logged.
Now each process writes under its own name and moves the file into place atomically, and a handler's own error
ends the call as an internal error (logged, closed 1011), never as a silent normal close.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from ivr.prompts import PromptLibrary
from ivr.serializers.base import CallStart, Frame, OutEvent
from ivr.serializers.l16 import L16Serializer
from ivr.transport import TransportLimits, serve_call

ROUNDS = 6


def _load(folder: str, barrier: object, out: object) -> None:
    lib = PromptLibrary(Path(folder))
    barrier.wait()  # type: ignore[attr-defined]
    try:
        out.put(len(lib.pcm16("greeting")))  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - reported to the test
        out.put(f"{type(exc).__name__}: {exc}")  # type: ignore[attr-defined]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng (a Makefile SYSDEPS package) is missing")
def test_two_processes_making_the_same_prompt_at_once_both_get_all_of_it(tmp_path: Path) -> None:
    whole = len(PromptLibrary(tmp_path / "alone").pcm16("greeting"))
    ctx = mp.get_context("fork")  # the worker function lives in this test module
    got: list[object] = []
    for i in range(ROUNDS):
        folder = tmp_path / f"shared-{i}"
        barrier, out = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_load, args=(str(folder), barrier, out)) for _ in range(2)]
        for p in procs:
            p.start()
        got += [out.get(timeout=60), out.get(timeout=60)]
        for p in procs:
            p.join(30)
        assert sorted(f.name for f in folder.iterdir()) == ["greeting.wav"]  # no temporary file left behind
    assert got == [whole] * (2 * ROUNDS)


class _BrokenGreeting:
    """A handler whose opening fails as a damaged prompt file did (soundfile raises a RuntimeError)."""

    audio_block_bytes = 0
    finished = False

    def __init__(self) -> None:
        self.ended: list[str] = []

    def opening(self) -> Sequence[OutEvent]:
        raise RuntimeError("Error opening 'greeting.wav': File contains data in an unknown format.")

    def on_audio(self, payload: bytes) -> Sequence[OutEvent]:
        return []

    def on_digit(self, digit: str) -> Sequence[OutEvent]:
        return []

    def on_mark(self, name: str) -> Sequence[OutEvent]:
        return []

    def end(self, reason: str) -> Sequence[OutEvent]:
        self.ended.append(reason)
        return []


class _Socket:
    def __init__(self, frames: list[Frame]) -> None:
        self.frames = frames
        self.closed: list[int] = []

    async def receive(self) -> Frame | None:
        return self.frames.pop(0) if self.frames else None

    async def send(self, frame: Frame) -> None:
        pass

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed.append(code)


def test_an_error_in_the_handler_is_an_internal_error_not_a_hang_up(caplog: pytest.LogCaptureFixture) -> None:
    handler = _BrokenGreeting()
    meta = json.dumps({"content-type": "audio/l16;rate=8000", "call_id": "c1", "speaker_id": "x"})
    ws = _Socket([meta, b"\x00\x00" * 160])

    async def open_handler(start: CallStart) -> _BrokenGreeting:
        return handler

    reason = asyncio.run(serve_call(ws, L16Serializer(), open_handler, limits=TransportLimits(idle_timeout_s=1.0)))
    assert reason == "internal-error" and handler.ended == ["internal-error"]  # the outcome is still recorded
    assert ws.closed == [1011]  # the platform sees an error close, not a normal end of call
    assert any("error in its handler" in r.getMessage() and r.exc_info for r in caplog.records)
