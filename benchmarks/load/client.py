"""A light asyncio client for load runs: Twilio and L16 calls, enrolment and verification uploads.

Every call and upload leaves one log record saying what came back (decisions, close code, HTTP status, body,
timings) or how it failed; the scenario counts database rows against these records.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import soundfile as sf
import websockets

from ivr.serializers.twilio import DECISION_MARK_PREFIX
from ivr.simulate import call_frames
from ivr.twilio_auth import twilio_signature

__all__ = ["CallLog", "UploadLog", "play_call", "register", "upload", "wav_bytes"]

_FRAME_S = 0.02
Audio = npt.NDArray[np.float32]


@dataclass
class CallLog:
    call_id: str
    protocol: str
    worker: str
    speaker: str
    genuine: bool
    decisions: list[str] = field(default_factory=list)
    close_code: int | None = None  # the server's close frame (None: the connection dropped without one)
    error: str = ""  # connect failure or abnormal end
    audio_s: float = 0.0
    time_to_decision_s: float | None = None  # from the first audio frame
    latency_ms: float | None = None  # decision arrival - when the audio it was decided at was sent (L16)

    @property
    def clean(self) -> bool:
        """Exactly one final decision, or none and a proper close (a refusal the platform can retry)."""
        if self.error and not self.error.startswith("refused"):
            return False
        return len(self.decisions) == 1 or (not self.decisions and (self.close_code is not None or bool(self.error)))


@dataclass
class UploadLog:
    kind: str  # enroll | verify | register
    worker: str
    speaker: str
    status: int | None = None  # None: no HTTP answer (connection lost: outcome unknown to the client)
    body: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    latency_s: float = 0.0


def wav_bytes(x: Audio, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _decision_of(msg: dict[str, Any]) -> tuple[str | None, int | None]:
    if msg.get("event") == "mark" and str(msg.get("mark", {}).get("name", "")).startswith(DECISION_MARK_PREFIX):
        return msg["mark"]["name"][len(DECISION_MARK_PREFIX) :], None
    if msg.get("event") == "decision":
        return str(msg["decision"]), msg.get("decided_at_ms")
    return None, None


async def play_call(
    protocol: str,
    worker: tuple[str, str],
    audio8k: Audio,
    speaker: str,
    *,
    genuine: bool,
    api_key: str,
    speed: float = 1.0,
    drain_s: float = 10.0,
    connect_timeout_s: float = 10.0,
    tenant: str = "",
    twilio_token: str = "",
) -> CallLog:
    """Play one call in (near) real time to ``worker`` = (name, http url); never raises. Twilio calls go to
    ``/v1/streams/twilio/{tenant}``, signed with ``twilio_token`` as Twilio signs them."""
    name, base = worker
    call_id = ("CA" if protocol == "twilio" else "") + uuid.uuid4().hex
    log = CallLog(call_id, protocol, name, speaker, genuine, audio_s=audio8k.size / 8000)
    url = base.replace("http://", "ws://") + f"/v1/streams/{protocol}"
    headers: dict[str, str] = {}
    if protocol == "twilio" and tenant:
        url += f"/{tenant}"
        if twilio_token:
            headers["X-Twilio-Signature"] = twilio_signature(twilio_token, url)
    sent_at: list[float] = []
    t_first: list[float] = []
    try:
        ws = await asyncio.wait_for(
            websockets.connect(url, max_size=None, open_timeout=None, additional_headers=headers), connect_timeout_s
        )
    except websockets.InvalidStatus as exc:
        log.error = f"refused: HTTP {exc.response.status_code}"
        return log
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        log.error = f"refused: {type(exc).__name__}"  # nothing started: the platform retries another worker
        return log

    async def reader() -> None:
        async for msg in ws:
            if not isinstance(msg, str):
                continue
            decision, at_ms = _decision_of(json.loads(msg))
            if decision is None:
                continue
            now = time.perf_counter()
            log.decisions.append(decision)
            if len(log.decisions) == 1 and t_first:
                log.time_to_decision_s = now - t_first[0]
                if at_ms is not None and sent_at:
                    idx = min(len(sent_at) - 1, max(0, int(np.ceil(at_ms / 1000 / _FRAME_S)) - 1))
                    log.latency_ms = (now - sent_at[idx]) * 1000

    try:
        task = asyncio.create_task(reader())
        media, opening, closing = call_frames(protocol, audio8k, speaker, call_id, api_key, 8000)
        for f in opening:
            await ws.send(f)
        start = time.perf_counter()
        t_first.append(start)
        for i, f in enumerate(media):
            if speed > 0:
                delay = start + i * _FRAME_S / speed - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent_at.append(time.perf_counter())
            await ws.send(f)
        for f in closing:
            await ws.send(f)
        try:
            await asyncio.wait_for(asyncio.shield(task), drain_s)
        except TimeoutError:
            await ws.close()  # the server did not end the call: we hang up
            await asyncio.wait_for(task, 5)
    except websockets.ConnectionClosed:
        pass
    except (OSError, TimeoutError) as exc:
        log.error = f"{type(exc).__name__}: {exc}"
    finally:
        await ws.close()
        received = ws.protocol.close_rcvd
        if received is not None:
            log.close_code = int(received.code)
        elif not log.error:
            log.error = "connection dropped without a close frame"
        task.cancel()
    return log


async def upload(
    client: httpx.AsyncClient,
    kind: str,
    worker: tuple[str, str],
    speaker: str,
    api_key: str,
    audio8k: Audio | None = None,
    **form: str,
) -> UploadLog:
    """POST an enrolment or verification (multipart ``audio``); never raises."""
    name, base = worker
    log = UploadLog(kind, name, speaker)
    path = {"enroll": "enrollments", "verify": "verifications"}[kind]
    t0 = time.perf_counter()
    try:
        files = {"audio": ("a.wav", wav_bytes(audio8k if audio8k is not None else np.zeros(8000, np.float32)))}
        r = await client.post(
            f"{base}/v1/speakers/{speaker}/{path}",
            files=files,
            data=form,
            headers={"Authorization": f"Bearer {api_key}"},
        )
        log.status, log.body = r.status_code, r.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.error = type(exc).__name__
    log.latency_s = time.perf_counter() - t0
    return log


async def register(client: httpx.AsyncClient, worker: tuple[str, str], speaker: str, api_key: str) -> UploadLog:
    name, base = worker
    log = UploadLog("register", name, speaker)
    try:
        r = await client.post(
            f"{base}/v1/speakers",
            json={"external_ref": speaker, "consent": {"method": "ivr", "text_version": "v1"}},
            headers={"Authorization": f"Bearer {api_key}"},
        )
        log.status, log.body = r.status_code, r.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.error = type(exc).__name__
    return log
