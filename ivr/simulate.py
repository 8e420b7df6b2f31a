"""A client that plays audio into the service as a telephony platform would (Twilio, AudioHook or L16), in real
time or faster, and reports the decisions with their timing. Used by ``voiceauth call simulate`` and the streaming
benchmark. Audio is given as 8 kHz float samples (L16 may upsample to 16 kHz).

Liveness: with ``answer``, the caller waits for each challenge the service announces (a Twilio mark, an L16 or
AudioHook event) and says ``answer(digits)``; :func:`fsdd_answer` makes such answers from FSDD recordings, saying the
digits asked (``match``) or other digits (``wrong``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import websockets

from ivr.dtmf import dtmf_tone
from ivr.serializers.twilio import CHALLENGE_MARK_PREFIX, DECISION_MARK_PREFIX
from ivr.twilio_auth import twilio_signature
from voiceauth.audio.codecs import l16_encode, mulaw_encode
from voiceauth.audio.resample import resample
from voiceauth.errors import VoiceAuthError

__all__ = ["PROTOCOLS", "Answer", "SimResult", "audiohook_headers", "call_frames", "fsdd_answer", "simulate_call"]

#: a liveness answer: the digits the service asked for -> the caller's 8 kHz speech
Answer = Callable[[str], npt.NDArray[np.float32]]

PROTOCOLS = ("twilio", "audiohook", "l16")
_FRAME_S = 0.02


@dataclass
class SimResult:
    call_id: str
    protocol: str
    decision: str | None = None
    decided_at_ms: int | None = None  # server's audio position when it decided (L16, AudioHook)
    decision_wall_s: float | None = None  # seconds from the first frame to the decision arriving
    latency_ms: float | None = None  # decision arrival - when the audio at decided_at_ms was sent
    audio_s: float = 0.0
    events: list[tuple[float, str]] = field(default_factory=list)  # (seconds since start, what)
    challenges: list[str] = field(default_factory=list)  # liveness digits the service asked for
    decisions: list[str] = field(default_factory=list)  # every decision sent on the stream, in order


def fsdd_answer(folder: Path, speaker: str, mode: str = "match", *, first_take: int = 0) -> Answer:
    """Answers said by FSDD ``speaker``: the digits asked (``match``) or each digit + 3 mod 10 (``wrong``), 0.2 s
    gaps, each recording used once (takes ``first_take``.. upward, so no answer replays an earlier one)."""
    import soundfile as sf

    if mode not in ("match", "wrong"):
        raise VoiceAuthError(f"--say-digits {mode!r} is not known; use match or wrong")
    if not folder.is_dir():
        raise VoiceAuthError(
            f"no FSDD folder at {folder}; give --fsdd PATH (../shared/data/fsdd on developer machines)"
        )
    next_take = dict.fromkeys("0123456789", first_take)

    def say(digits: str) -> npt.NDArray[np.float32]:
        spoken = digits if mode == "match" else "".join(str((int(d) + 3) % 10) for d in digits)
        parts = [np.zeros(3200, np.float32)]
        for d in spoken:
            path = folder / f"{d}_{speaker}_{next_take[d]}.wav"
            if not path.is_file():
                raise VoiceAuthError(f"FSDD recording {path.name} is missing (speaker {speaker!r}, digit {d})")
            next_take[d] += 1
            wav, _ = sf.read(path, dtype="float32")
            parts += [wav, np.zeros(1600, np.float32)]
        return np.concatenate(parts).astype(np.float32)

    return say


def audiohook_headers(authority: str, path: str, session_id: str, api_key: str, secret: bytes | None) -> dict[str, str]:
    """Handshake headers, signed (RFC 9421 ``sig1``, hmac-sha256) as Genesys' reference client signs them."""
    headers = {
        "Audiohook-Organization-Id": str(uuid.uuid4()),
        "Audiohook-Session-Id": session_id,
        "Audiohook-Correlation-Id": str(uuid.uuid4()),
        "X-API-KEY": api_key,
    }
    if secret is None:
        return headers
    created = int(time.time())
    comps = ["@request-target", "@authority", "audiohook-organization-id", "audiohook-session-id"]
    comps += ["audiohook-correlation-id", "x-api-key"]
    params = "(" + " ".join(f'"{c}"' for c in comps) + ")"
    params += (
        f';keyid="{api_key}";nonce="{uuid.uuid4().hex}";alg="hmac-sha256";created={created};expires={created + 300}'
    )
    values = {"@request-target": path, "@authority": authority, **{k.lower(): v for k, v in headers.items()}}
    base = "\n".join([*(f'"{c}": {values[c]}' for c in comps), f'"@signature-params": {params}'])
    sig = base64.b64encode(hmac.new(secret, base.encode(), hashlib.sha256).digest()).decode()
    headers["Signature-Input"] = f"sig1={params}"
    headers["Signature"] = f"sig1=:{sig}:"
    return headers


def _with_tones(audio: npt.NDArray[np.float32], dtmf: str) -> npt.NDArray[np.float32]:
    gap = np.zeros(int(0.15 * 8000), dtype=np.float32)
    tones = [np.concatenate([dtmf_tone(d, 8000, 0.1, 0.2), gap]) for d in dtmf]
    return np.concatenate([audio, gap, *tones, np.zeros(8000, np.float32)]).astype(np.float32)


async def simulate_call(
    protocol: str,
    base_url: str,
    audio8k: npt.NDArray[np.float32],
    speaker: str,
    *,
    dtmf: str = "",
    speed: float = 1.0,
    api_key: str = "",
    audiohook_secret: bytes | None = None,
    l16_rate: int = 8000,
    call_id: str | None = None,
    drain_s: float = 3.0,
    tenant: str = "",
    twilio_auth_token: str = "",
    public_url: str = "",
    answer: Answer | None = None,
    max_answers: int = 2,
) -> SimResult:
    """Play one call; ``speed`` 1.0 = real time, 0 = as fast as the socket takes it.

    ``answer``: a liveness caller. ``audio8k`` is not played; each challenge the service announces (at most
    ``max_answers``: the first and the re-prompt) is answered with ``answer(digits)`` and 2.5 s of silence.

    Twilio: ``tenant`` picks ``/v1/streams/twilio/{tenant}`` (else the unscoped alias); ``twilio_auth_token`` signs
    the handshake as Twilio does (X-Twilio-Signature over ``public_url`` + path when the service is behind a proxy,
    else over the URL connected to)."""
    if protocol not in PROTOCOLS:
        raise VoiceAuthError(f"protocol {protocol!r} is not supported; use {', '.join(PROTOCOLS)}")
    call_id = call_id or (("CA" if protocol == "twilio" else "") + uuid.uuid4().hex)
    res = SimResult(call_id, protocol)
    if dtmf and protocol != "twilio":
        audio8k = _with_tones(audio8k, dtmf)  # in-band, as a phone sends them
    res.audio_s = audio8k.size / 8000
    path = f"/v1/streams/{protocol}" + (f"/{tenant}" if protocol == "twilio" and tenant else "")
    url = base_url.rstrip("/") + path
    headers: dict[str, str] = {}
    if protocol == "twilio" and twilio_auth_token:
        headers["X-Twilio-Signature"] = twilio_signature(twilio_auth_token, (public_url.rstrip("/") or base_url) + path)
    if protocol == "l16" and api_key:
        headers["X-API-KEY"] = api_key
    if protocol == "audiohook":
        headers = audiohook_headers(url.split("/", 3)[2], path, call_id, api_key, audiohook_secret)
    sent_at: list[float] = []  # wall time each frame was sent
    t0 = time.perf_counter()
    challenged: asyncio.Queue[str] = asyncio.Queue()

    def on_challenge(digits: str) -> None:
        res.challenges.append(digits)
        res.events.append((time.perf_counter() - t0, f"challenge {len(res.challenges)}: say {' '.join(digits)}"))
        challenged.put_nowait(digits)

    def on_text(msg: dict[str, Any]) -> None:
        now = time.perf_counter() - t0
        decision, at_ms = None, None
        mark = msg.get("mark", {}).get("name", "") if msg.get("event") == "mark" else ""
        if mark.startswith(CHALLENGE_MARK_PREFIX):
            on_challenge(mark[len(CHALLENGE_MARK_PREFIX) :])
        elif mark.startswith(DECISION_MARK_PREFIX):
            decision = mark[len(DECISION_MARK_PREFIX) :]
        elif msg.get("event") == "challenge":
            on_challenge(str(msg["digits"]))
        elif msg.get("event") == "decision":
            decision, at_ms = msg["decision"], msg.get("decided_at_ms")
        elif msg.get("type") == "event":
            entity = msg["parameters"]["entities"][0]
            data = entity["data"]
            if entity.get("type") == "voiceauth.challenge":
                on_challenge(str(data["digits"]))
                return
            decision, at_ms = data["decision"], data.get("decided_at_ms")
        if decision is None:
            return
        res.decisions.append(decision)
        res.events.append((now, f"decision {decision}" + (f" at {at_ms} ms of audio" if at_ms is not None else "")))
        if res.decision is None:
            res.decision, res.decided_at_ms, res.decision_wall_s = decision, at_ms, now
            if at_ms is not None and sent_at:
                idx = min(len(sent_at) - 1, max(0, int(np.ceil(at_ms / 1000 / _FRAME_S)) - 1))
                res.latency_ms = (time.perf_counter() - t0 - (sent_at[idx] - t0)) * 1000

    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:

        async def reader() -> None:
            try:
                async for msg in ws:
                    if isinstance(msg, str):
                        on_text(json.loads(msg))
            except websockets.ConnectionClosed:
                pass

        task = asyncio.create_task(reader())
        first = audio8k if answer is None else np.zeros(0, np.float32)
        frames, opening, closing = call_frames(protocol, first, speaker, call_id, api_key, l16_rate)
        for f in opening:
            await ws.send(f)
        if protocol == "audiohook":
            await asyncio.sleep(0.05)  # let 'opened' come back before audio

        async def play(frames: list[Any]) -> None:
            start = time.perf_counter()
            for i, f in enumerate(frames):
                if speed > 0:
                    delay = start + i * _FRAME_S / speed - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                elif i % 50 == 0:
                    await asyncio.sleep(0)
                sent_at.append(time.perf_counter())
                await ws.send(f)

        try:
            await play(frames)
            for k in range(max_answers if answer is not None else 0):
                try:
                    digits = await asyncio.wait_for(challenged.get(), timeout=30.0 if k == 0 else drain_s)
                except TimeoutError:
                    break
                spoken = np.concatenate([answer(digits), np.zeros(int(2.5 * 8000), np.float32)])  # type: ignore[misc]
                res.audio_s += spoken.size / 8000
                media = call_frames(protocol, spoken, speaker, call_id, api_key, l16_rate, first_chunk=len(sent_at))
                await play(media[0])
            if dtmf and protocol == "twilio":
                for d in dtmf:
                    await ws.send(json.dumps({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": d}}))
            for f in closing:
                await ws.send(f)
        except websockets.ConnectionClosed:
            pass
        try:
            await asyncio.wait_for(task, timeout=drain_s)
        except TimeoutError:
            task.cancel()
    return res


def call_frames(
    protocol: str,
    audio8k: npt.NDArray[np.float32],
    speaker: str,
    call_id: str,
    api_key: str,
    l16_rate: int,
    *,
    first_chunk: int = 0,
) -> tuple[list[Any], list[str], list[str]]:
    """One call's messages in ``protocol``: (media frames of 20 ms, opening messages, closing messages).
    ``first_chunk``: frames already sent in this call (Twilio numbers its media chunks per stream)."""
    n = int(8000 * _FRAME_S)
    if protocol == "twilio":
        ulaw = mulaw_encode(audio8k)
        sid = "MZ" + call_id[2:]
        start = {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": sid,
            "start": {
                "streamSid": sid,
                "callSid": call_id,
                "accountSid": "AC" + "0" * 32,
                "tracks": ["inbound"],
                "customParameters": {"speaker_id": speaker},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
        frames: list[Any] = [
            json.dumps(
                {
                    "event": "media",
                    "streamSid": sid,
                    "media": {
                        "track": "inbound",
                        "chunk": str(first_chunk + k + 1),
                        "timestamp": str((first_chunk + k) * 20),
                        "payload": base64.b64encode(ulaw[i : i + n]).decode(),
                    },
                }
            )
            for k, i in enumerate(range(0, len(ulaw), n))
        ]
        connected = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        return frames, [connected, json.dumps(start)], [json.dumps({"event": "stop", "streamSid": sid})]
    if protocol == "l16":
        audio = audio8k if l16_rate == 8000 else resample(audio8k, 8000, l16_rate)
        pcm = l16_encode(audio)
        step = l16_rate // 50 * 2
        meta = {"content-type": f"audio/l16;rate={l16_rate}", "call_id": call_id, "speaker_id": speaker}
        if api_key:
            meta["api_key"] = api_key
        frames = [pcm[i : i + step] for i in range(0, len(pcm), step)]
        return frames, [json.dumps(meta)], [json.dumps({"event": "stop"})]
    ulaw = mulaw_encode(audio8k)
    seq = iter(range(1, 1_000_000))

    def msg(kind: str, params: dict[str, Any]) -> str:
        return json.dumps(
            {
                "version": "2",
                "id": call_id,
                "type": kind,
                "seq": next(seq),
                "serverseq": 0,
                "position": "PT0S",
                "parameters": params,
            }
        )

    offer = {"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000}
    open_msg = msg(
        "open",
        {
            "organizationId": str(uuid.uuid4()),
            "conversationId": str(uuid.uuid4()),
            "participant": {"id": str(uuid.uuid4()), "ani": "", "aniName": "", "dnis": ""},
            "media": [offer],
            "language": "en-US",
            "customConfig": {"speaker_id": speaker},
        },
    )
    frames = [ulaw[i : i + n] for i in range(0, len(ulaw), n)]
    return frames, [open_msg], [msg("close", {"reason": "end"})]
