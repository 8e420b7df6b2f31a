"""``voiceauth call simulate`` against a live server for each protocol, and passive enrolment during a call
(L16 ``mode=enroll`` with consent), then verification of the newly enrolled caller. Real engine."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from ivr.simulate import simulate_call
from tests.ivr.conftest import AUDIOHOOK_KEY, AUDIOHOOK_SECRET, TELEPHONY_KEY, LiveServer, fsdd_digits
from voiceauth.cli import app

pytestmark = pytest.mark.model


def _wav(path: Path, samples: np.ndarray) -> Path:
    sf.write(path, samples, 8000, subtype="PCM_16")
    return path


def _simulate(server: LiveServer, *args: str) -> str:
    result = CliRunner().invoke(app, ["call", "simulate", "--url", server.ws, "--speed", "0", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_passive_enrolment_then_voice_verification(live_server: LiveServer, tmp_path: Path) -> None:
    enrol_audio = np.concatenate([fsdd_digits("lucas", "0123456789", i) for i in (0, 1)])
    import json

    import websockets

    from voiceauth.audio.codecs import l16_encode

    async def enrol() -> list[dict]:  # type: ignore[type-arg]
        got = []
        meta = {
            "content-type": "audio/l16;rate=8000",
            "call_id": "enrol-lucas",
            "speaker_id": "lucas",
            "mode": "enroll",
            "consent": "yes",
        }
        async with websockets.connect(
            f"{live_server.ws}/v1/streams/l16", additional_headers={"X-API-KEY": TELEPHONY_KEY}
        ) as ws:
            await ws.send(json.dumps(meta))
            pcm = l16_encode(enrol_audio)
            for i in range(0, len(pcm), 3200):
                await ws.send(pcm[i : i + 3200])
            await ws.send(json.dumps({"event": "stop"}))
            async for msg in ws:
                if isinstance(msg, str):
                    got.append(json.loads(msg))
        return got

    msgs = asyncio.run(enrol())
    assert msgs and msgs[-1]["event"] == "enrollment" and msgs[-1]["enrolled"] is True, msgs
    out = _simulate(
        live_server,
        "--protocol",
        "l16",
        "--api-key",
        TELEPHONY_KEY,
        "--speaker",
        "lucas",
        "--audio",
        str(_wav(tmp_path / "lucas.wav", fsdd_digits("lucas", "9876543210", 43))),
    )
    assert "decision ACCEPT" in out and "decision latency" in out


def test_cli_twilio_reject_then_pin_by_dtmf_events(live_server: LiveServer, tmp_path: Path) -> None:
    audio = _wav(tmp_path / "imp.wav", fsdd_digits("nicolas", "1357924680", 43))
    out = _simulate(live_server, "--protocol", "twilio", "--speaker", "george", "--audio", str(audio), "--dtmf", "4321")
    assert "decision REJECT" in out
    call_id = out.split()[1]
    r = httpx.get(f"{live_server.url}/v1/calls/{call_id}", headers={"X-API-KEY": TELEPHONY_KEY}).json()
    assert r["decision"] == "REJECT" and r["method"] == "pin" and r["flow_outcome"] == "verified"


def test_cli_audiohook_signed(live_server: LiveServer, tmp_path: Path) -> None:
    audio = _wav(tmp_path / "g.wav", fsdd_digits("george", "8642097531", 44))
    secret = base64.b64encode(AUDIOHOOK_SECRET).decode()
    out = _simulate(
        live_server,
        "--protocol",
        "audiohook",
        "--speaker",
        "george",
        "--audio",
        str(audio),
        "--api-key",
        AUDIOHOOK_KEY,
        "--audiohook-secret",
        secret,
    )
    assert "decision ACCEPT" in out


def test_cli_refuses_unknown_protocol(tmp_path: Path) -> None:
    audio = _wav(tmp_path / "s.wav", np.zeros(800, dtype=np.float32))
    result = CliRunner().invoke(app, ["call", "simulate", "--protocol", "sip", "--audio", str(audio), "--speaker", "x"])
    assert result.exit_code == 2 and "twilio, audiohook, l16" in result.output


def test_simulated_silence_is_decided_at_the_end(live_server: LiveServer) -> None:
    silence = np.zeros(8000, np.float32)
    res = asyncio.run(simulate_call("twilio", live_server.ws, silence, "george", speed=0, drain_s=5))
    assert res.decision == "NOT_ENOUGH_SPEECH"  # sent when the stream stops, before the socket closes
