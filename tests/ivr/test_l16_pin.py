"""L16 endpoint (16 kHz, Vonage-style metadata) with the real engine: ACCEPT by voice, and the PIN fallback path
after a voice REJECT, the PIN typed as in-band DTMF tones mixed with speech and noise."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
import websockets
from sqlalchemy import select

from ivr.dtmf import dtmf_tone
from tests.ivr.conftest import SECURITY_KEY, TELEPHONY_KEY, LiveServer, fsdd_digits, l16_call
from voiceauth.audio.resample import resample
from voiceauth.store.models import VerificationAttempt

pytestmark = pytest.mark.model


async def _l16_call(server: LiveServer, call_id: str, audio16: np.ndarray, speaker: str) -> list[dict]:  # type: ignore[type-arg]
    """Stream 16 kHz audio in 20 ms frames (faster than real time); return the JSON messages the service sent."""
    return await l16_call(server.ws, call_id, audio16, speaker, 16000)


def _outcome(server: LiveServer, call_id: str) -> dict:  # type: ignore[type-arg]
    r = httpx.get(f"{server.url}/v1/calls/{call_id}", headers={"Authorization": f"Bearer {TELEPHONY_KEY}"})
    assert r.status_code == 200, r.text
    return r.json()


def test_l16_accept(live_server: LiveServer) -> None:
    audio = resample(fsdd_digits("george", "2718281828", 41), 8000, 16000)
    texts = asyncio.run(_l16_call(live_server, "l16-accept", audio, "george"))
    decisions = [t for t in texts if t.get("event") == "decision"]
    assert decisions and decisions[0]["decision"] == "ACCEPT"
    assert "score" not in decisions[0]
    outcome = _outcome(live_server, "l16-accept")
    assert outcome["decision"] == "ACCEPT" and outcome["method"] == "voice" and outcome["protocol"] == "l16"


def test_pin_fallback_after_reject_with_inband_dtmf(live_server: LiveServer) -> None:
    rng = np.random.default_rng(7)
    impostor = fsdd_digits("jackson", "2718281828", 41)
    # after the impostor's digits: the PIN 4321 as tones, over another voice and line noise
    tail = np.zeros(8000 * 3, dtype=np.float32)
    chatter = fsdd_digits("lucas", "5678", 12)[: tail.size] * 0.3
    tail[: chatter.size] += chatter
    for k, digit in enumerate("4321"):
        start = int((0.3 + 0.5 * k) * 8000)
        tone = dtmf_tone(digit, 8000, duration_s=0.1, level=0.2)
        tail[start : start + tone.size] += tone
    tail += rng.normal(0, 0.01, tail.size).astype(np.float32)
    audio = resample(np.concatenate([impostor, tail]), 8000, 16000)
    texts = asyncio.run(_l16_call(live_server, "l16-pin", audio, "george"))
    decisions = [t["decision"] for t in texts if t.get("event") == "decision"]
    assert decisions == ["REJECT"]
    outcome = _outcome(live_server, "l16-pin")
    assert outcome["decision"] == "REJECT"  # the voice decision stays on record
    assert outcome["method"] == "pin" and outcome["flow_outcome"] == "verified"


def test_l16_without_key_is_refused(live_server: LiveServer) -> None:
    async def call() -> None:
        async with websockets.connect(f"{live_server.ws}/v1/streams/l16") as ws:
            await ws.send(json.dumps({"content-type": "audio/l16;rate=8000", "call_id": "l16-nokey"}))
            await ws.send(b"\x00\x00" * 160)
            with pytest.raises(websockets.ConnectionClosed):
                for _ in range(100):
                    await ws.recv()

    asyncio.run(call())
    r = httpx.get(f"{live_server.url}/v1/calls/l16-nokey", headers={"X-API-KEY": TELEPHONY_KEY})
    assert r.status_code == 404


def test_a_call_replaying_an_earlier_call_is_refused(live_server: LiveServer) -> None:
    """Someone who recorded george's side of a call plays it into a new one: the voice matches, the replay check
    (on by default for calls too) finds the earlier attempt's fingerprint and refuses it. Telephony sees only the
    decision; the reason stays with security staff. A new recording of george still passes."""
    audio = resample(fsdd_digits("george", "5772156649", 45), 8000, 16000)
    first = asyncio.run(_l16_call(live_server, "l16-original", audio, "george"))
    assert [t["decision"] for t in first if t.get("event") == "decision"] == ["ACCEPT"]
    texts = asyncio.run(_l16_call(live_server, "l16-replayed", audio, "george"))
    decisions = [t for t in texts if t.get("event") == "decision"]
    assert [d["decision"] for d in decisions] == ["SPOOF_SUSPECTED"]
    assert "reason" not in decisions[0] and "score" not in decisions[0]
    public = _outcome(live_server, "l16-replayed")
    assert public["decision"] == "SPOOF_SUSPECTED" and "spoof_reason" not in public and "score" not in public
    r = httpx.get(f"{live_server.url}/v1/calls/l16-replayed", headers={"Authorization": f"Bearer {SECURITY_KEY}"})
    assert r.status_code == 200 and r.json()["spoof_reason"] == "replay"  # security staff see why
    with live_server.pipe.store.transaction() as tx:
        attempt = tx.session.execute(
            select(VerificationAttempt).where(VerificationAttempt.call_id == "l16-replayed")
        ).scalar_one()
        assert attempt.spoof_reason == "replay"
    fresh = resample(fsdd_digits("george", "5772156649", 46), 8000, 16000)
    again = asyncio.run(_l16_call(live_server, "l16-fresh", fresh, "george"))
    assert [t["decision"] for t in again if t.get("event") == "decision"] == ["ACCEPT"]
