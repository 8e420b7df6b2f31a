"""AudioHook v2 with a Python test client that signs its handshake as Genesys' reference client does (RFC 9421
HTTP message signature, ``sig1``, hmac-sha256): probe, the full message sequence, stereo with the impostor on the
agent channel (real engine), bad and missing signatures, out-of-order ``seq``, binary data before ``opened``."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import numpy as np
import pytest
import websockets

from ivr.serializers.audiohook import PROBE_CONVERSATION
from tests.ivr.conftest import AUDIOHOOK_KEY, AUDIOHOOK_SECRET, TELEPHONY_KEY, LiveServer, fsdd_digits
from voiceauth.audio.codecs import mulaw_encode

pytestmark = pytest.mark.model  # the live server runs the real engine

PATH = "/v1/streams/audiohook"
STEREO = {"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000}
MONO = {"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000}


def signed_headers(
    authority: str, session_id: str, *, api_key: str = AUDIOHOOK_KEY, secret: bytes = AUDIOHOOK_SECRET
) -> dict[str, str]:
    headers = {
        "Audiohook-Organization-Id": str(uuid.uuid4()),
        "Audiohook-Session-Id": session_id,
        "Audiohook-Correlation-Id": str(uuid.uuid4()),
        "X-API-KEY": api_key,
    }
    created = int(time.time())
    params = (
        '("@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" '
        '"audiohook-correlation-id" "x-api-key")'
        f';keyid="{api_key}";nonce="{base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")}"'
        f';alg="hmac-sha256";created={created};expires={created + 300}'
    )
    base = "\n".join(
        [
            f'"@request-target": {PATH}',
            f'"@authority": {authority}',
            f'"audiohook-organization-id": {headers["Audiohook-Organization-Id"]}',
            f'"audiohook-session-id": {session_id}',
            f'"audiohook-correlation-id": {headers["Audiohook-Correlation-Id"]}',
            f'"x-api-key": {api_key}',
            f'"@signature-params": {params}',
        ]
    )
    sig = base64.b64encode(hmac.new(secret, base.encode(), hashlib.sha256).digest()).decode()
    headers["Signature-Input"] = f"sig1={params}"
    headers["Signature"] = f"sig1=:{sig}:"
    return headers


class Client:
    """A minimal AudioHook client: keeps seq/serverseq/position as the protocol requires."""

    def __init__(self, ws: Any, session_id: str) -> None:
        self.ws, self.id = ws, session_id
        self.seq, self.serverseq, self.samples = 0, 0, 0

    async def send(self, kind: str, parameters: dict[str, Any] | None = None, *, seq: int | None = None) -> None:
        self.seq = self.seq + 1 if seq is None else seq
        await self.ws.send(
            json.dumps(
                {
                    "version": "2",
                    "id": self.id,
                    "type": kind,
                    "seq": self.seq,
                    "serverseq": self.serverseq,
                    "position": f"PT{self.samples / 8000:.2f}S",
                    "parameters": parameters or {},
                }
            )
        )

    async def recv(self) -> dict[str, Any]:
        while True:
            msg = await asyncio.wait_for(self.ws.recv(), timeout=60)
            if isinstance(msg, str):
                data: dict[str, Any] = json.loads(msg)
                assert data["seq"] == self.serverseq + 1, data  # the server's seq increases by exactly 1
                self.serverseq = data["seq"]
                return data

    async def open(self, media: list[dict[str, Any]], conversation: str | None = None, speaker: str = "george") -> dict:  # type: ignore[type-arg]
        await self.send(
            "open",
            {
                "organizationId": str(uuid.uuid4()),
                "conversationId": conversation or str(uuid.uuid4()),
                "participant": {"id": str(uuid.uuid4()), "ani": "+15550100", "aniName": "", "dnis": "+15550199"},
                "media": media,
                "language": "en-US",
                "customConfig": {"speaker_id": speaker},
            },
        )
        return await self.recv()

    async def audio(self, external: np.ndarray, internal: np.ndarray | None = None) -> None:
        if internal is None:
            data = mulaw_encode(external)
        else:
            n = min(external.size, internal.size)
            inter = np.stack([external[:n], internal[:n]], axis=1).reshape(-1)
            data = mulaw_encode(inter)
        step = 1600 if internal is not None else 800  # 100 ms frames
        for i in range(0, len(data), step):
            await self.ws.send(data[i : i + step])
            self.samples += (min(step, len(data) - i)) // (2 if internal is not None else 1)


def _connect(server: LiveServer, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return websockets.connect(server.ws + PATH, additional_headers=headers, max_size=None)


def _authority(server: LiveServer) -> str:
    return server.ws.removeprefix("ws://")


def test_connection_probe(live_server: LiveServer) -> None:
    async def run() -> None:
        sid = str(uuid.uuid4())
        async with _connect(live_server, signed_headers(_authority(live_server), sid)) as ws:
            c = Client(ws, sid)
            opened = await c.open([MONO], conversation=PROBE_CONVERSATION)
            assert opened["type"] == "opened" and opened["clientseq"] == 1
            await c.send("close", {"reason": "end"})
            closed = await c.recv()
            assert closed["type"] == "closed" and closed["clientseq"] == 2
            with pytest.raises(websockets.ConnectionClosed):
                await c.recv()

    asyncio.run(run())


def test_full_sequence_stereo_impostor_on_agent_channel(live_server: LiveServer) -> None:
    george = fsdd_digits("george", "1618033988", 42)
    impostor = fsdd_digits("jackson", "7493172859", 42)
    n = min(george.size, impostor.size)
    sid = str(uuid.uuid4())

    async def run() -> list[dict]:  # type: ignore[type-arg]
        got: list[dict] = []  # type: ignore[type-arg]
        async with _connect(live_server, signed_headers(_authority(live_server), sid)) as ws:
            c = Client(ws, sid)
            opened = await c.open([{"type": "audio", "format": "PCMU", "channels": ["internal"], "rate": 8000}, STEREO])
            assert opened["type"] == "opened" and opened["parameters"]["media"] == [STEREO]
            await c.send("ping")
            pong = await c.recv()
            assert pong["type"] == "pong" and pong["clientseq"] == c.seq
            await c.send("paused")
            await c.send("resumed")
            await c.send("update", {"language": "en-GB"})
            await c.audio(george[:n], impostor[:n])
            await c.send("close", {"reason": "end"})
            while True:
                msg = await c.recv()
                got.append(msg)
                if msg["type"] == "closed":
                    break
        return got

    msgs = asyncio.run(run())
    events = [m for m in msgs if m["type"] == "event"]
    assert events, msgs
    entity = events[0]["parameters"]["entities"][0]
    assert entity["type"] == "voiceauth.verification"
    assert entity["data"]["decision"] == "ACCEPT" and "score" not in entity["data"]
    assert msgs[-1]["type"] == "closed"
    r = httpx.get(f"{live_server.url}/v1/calls/{sid}", headers={"X-API-KEY": TELEPHONY_KEY})
    assert r.json()["decision"] == "ACCEPT" and r.json()["protocol"] == "audiohook"


def _refused(server: LiveServer, headers: dict[str, str]) -> bool:
    async def run() -> bool:
        try:
            async with _connect(server, headers) as ws:
                await ws.recv()
        except websockets.InvalidStatus:
            return True
        except websockets.ConnectionClosed:
            return False
        return False

    return asyncio.run(run())


def test_bad_and_missing_signatures_are_refused(live_server: LiveServer) -> None:
    auth = _authority(live_server)
    good = signed_headers(auth, str(uuid.uuid4()))
    assert _refused(live_server, signed_headers(auth, str(uuid.uuid4()), secret=b"wrong-secret"))
    unsigned = {k: v for k, v in good.items() if k not in ("Signature", "Signature-Input")}
    assert _refused(live_server, unsigned)
    tampered = dict(good, **{"Audiohook-Session-Id": str(uuid.uuid4())})  # signed for another session
    assert _refused(live_server, tampered)
    assert _refused(live_server, signed_headers(auth, str(uuid.uuid4()), api_key="not-a-key"))


def _run_until_disconnect(server: LiveServer, script) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    async def run() -> list[dict]:  # type: ignore[type-arg]
        sid = str(uuid.uuid4())
        got: list[dict] = []  # type: ignore[type-arg]
        async with _connect(server, signed_headers(_authority(server), sid)) as ws:
            c = Client(ws, sid)
            await script(c)
            try:
                while True:
                    got.append(await c.recv())
            except websockets.ConnectionClosed:
                pass
        return got

    return asyncio.run(run())


def test_out_of_order_seq_disconnects_with_error(live_server: LiveServer) -> None:
    async def script(c: Client) -> None:
        assert (await c.open([MONO]))["type"] == "opened"
        await c.send("ping", seq=5)

    msgs = _run_until_disconnect(live_server, script)
    # the call's result (too little speech) is still reported, then the server disconnects with an error
    assert [m["type"] for m in msgs] == ["event", "disconnect"]
    assert msgs[-1]["parameters"]["reason"] == "error"


def test_binary_before_opened_ends_the_call(live_server: LiveServer) -> None:
    async def script(c: Client) -> None:
        await c.ws.send(b"\xff" * 160)

    assert _run_until_disconnect(live_server, script) == []


def test_mono_offer_chosen_and_silence_is_not_enough_speech(live_server: LiveServer) -> None:
    async def script(c: Client) -> None:
        opened = await c.open([MONO])
        assert opened["parameters"]["media"] == [MONO]
        await c.audio(np.zeros(8000, dtype=np.float32))
        await c.send("close", {"reason": "end"})

    msgs = _run_until_disconnect(live_server, script)
    assert [m["type"] for m in msgs] == ["event", "closed"]
    assert msgs[0]["parameters"]["entities"][0]["data"]["decision"] == "NOT_ENOUGH_SPEECH"
