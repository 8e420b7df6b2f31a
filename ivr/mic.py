"""``voiceauth mic``: record the default input with pyaudio (the optional ``mic`` extra), show a live level meter and
progress, and stream 16 kHz L16 to ``/v1/streams/l16``. pyaudio is imported only here, only when the command runs.
With the IVR's liveness step on, the digits to say are printed when the service asks for them (the prompt also plays
on the stream)."""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from typing import IO, Any

import numpy as np

from voiceauth.errors import ConfigError

__all__ = ["level_bar", "run_mic"]

RATE = 16000
FRAME = RATE // 50  # 20 ms


def level_bar(samples: np.ndarray, width: int = 30) -> str:
    """A text level meter for one block of float samples (-60 dBFS .. 0 dBFS)."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    db = 20 * math.log10(max(rms, 1e-6))
    filled = int(round(width * min(1.0, max(0.0, (db + 60) / 60))))
    return "[" + "#" * filled + " " * (width - filled) + f"] {db:6.1f} dBFS"


def _open_input() -> tuple[Any, Any]:
    try:
        import pyaudio  # noqa: PLC0415 - optional extra
    except ImportError as exc:
        raise ConfigError("the microphone client needs pyaudio: pip install 'voiceauth[mic]'") from exc
    pa = pyaudio.PyAudio()
    stream = pa.open(format=pyaudio.paInt16, channels=1, rate=RATE, input=True, frames_per_buffer=FRAME)
    return pa, stream


def run_mic(action: str, speaker: str, *, url: str, api_key: str, seconds: float, out: IO[str]) -> int:
    """Record and stream; return 0 when a decision (or enrolment) came back, 1 otherwise."""
    pa, stream = _open_input()
    try:
        return asyncio.run(_stream(stream, action, speaker, url, api_key, seconds, out))
    finally:
        stream.stop_stream()
        stream.close()
        pa.terminate()


async def _stream(stream: Any, action: str, speaker: str, url: str, api_key: str, seconds: float, out: IO[str]) -> int:
    import websockets

    call_id = "mic-" + uuid.uuid4().hex[:12]
    meta = {"content-type": f"audio/l16;rate={RATE}", "call_id": call_id, "speaker_id": speaker, "mode": action}
    if action == "enroll":
        meta["consent"] = "yes"
    result: dict[str, Any] = {}
    async with websockets.connect(url.rstrip("/") + "/v1/streams/l16", additional_headers={"X-API-KEY": api_key}) as ws:

        async def reader() -> None:
            async for msg in ws:
                if isinstance(msg, str):
                    data = json.loads(msg)
                    if data.get("event") == "challenge":  # liveness: the prompt plays on the stream too
                        out.write(f"\nplease say: {' '.join(str(data['digits']))}\n")
                    if data.get("event") in ("decision", "enrollment"):
                        result.update(data)

        task = asyncio.create_task(reader())
        await ws.send(json.dumps(meta))
        t0 = time.monotonic()
        loop = asyncio.get_running_loop()
        while time.monotonic() - t0 < seconds and not result:
            data = await loop.run_in_executor(None, stream.read, FRAME, False)
            await ws.send(data)
            block = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768
            out.write(f"\r{level_bar(block)}  {time.monotonic() - t0:4.1f}/{seconds:.0f} s ")
            out.flush()
        await ws.send(json.dumps({"event": "stop"}))
        try:
            await asyncio.wait_for(task, timeout=15)
        except (TimeoutError, websockets.ConnectionClosed):
            task.cancel()
    out.write("\n")
    if not result:
        out.write("no result came back\n")
        return 1
    out.write(json.dumps(result) + "\n")
    return 0
