"""IVR fixtures: a store with enrolled FSDD speakers, the IVR service, and the app served by uvicorn on a free port.

The real-engine fixtures (``real_ivr``, ``live_server``) are session-scoped: one enrolment, one server.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import uvicorn
from fastapi import FastAPI

from ivr.pins import PinBook
from ivr.routes import router
from ivr.service import IvrService, KeyInfo, StaticKeys
from voiceauth.config import Settings
from voiceauth.embedding.base import EmbeddingEngine
from voiceauth.pipeline import Pipeline
from voiceauth.scoring.shipped import COHORT_DIR

TENANT = "acme"
TELEPHONY_KEY = "tel-key-0123456789"
SECURITY_KEY = "sec-key-0123456789"
AUDIOHOOK_KEY = "ah-key-0123456789"
AUDIOHOOK_SECRET = b"audiohook-client-secret-32-bytes"
FSDD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fsdd"


async def l16_call(ws_base: str, call_id: str, audio: np.ndarray, speaker: str, rate: int = 16000) -> list[dict]:  # type: ignore[type-arg]
    """Stream mono audio at ``rate`` over L16 in 20 ms frames (faster than real time); the JSON messages sent back."""
    import json

    import websockets

    from voiceauth.audio.codecs import l16_encode

    texts: list[dict] = []  # type: ignore[type-arg]
    meta = {"content-type": f"audio/l16;rate={rate}", "call_id": call_id, "speaker_id": speaker}
    frame = rate // 50 * 2
    async with websockets.connect(
        f"{ws_base}/v1/streams/l16", additional_headers={"X-API-KEY": TELEPHONY_KEY}, max_size=None
    ) as ws:
        await ws.send(json.dumps(meta))
        pcm = l16_encode(audio)
        try:
            for i in range(0, len(pcm), frame):
                await ws.send(pcm[i : i + frame])
                if i % (frame * 25) == 0:
                    await asyncio.sleep(0)  # let the server's replies in
            await ws.send(json.dumps({"event": "stop"}))
            async for msg in ws:
                if isinstance(msg, str):
                    texts.append(json.loads(msg))
        except websockets.ConnectionClosed:
            pass
    return texts


def fsdd_digits(speaker: str, digits: str, index: int) -> np.ndarray:
    parts = [sf.read(FSDD / f"{d}_{speaker}_{index}.wav", dtype="float32")[0] for d in digits]
    return np.concatenate(parts).astype(np.float32)


def ivr_settings(home: Path, **over: object) -> Settings:
    scoring = "cohort" if (COHORT_DIR / "MANIFEST.json").is_file() else "cosine"
    base: dict[str, object] = dict(
        home=home,
        scoring_backend=scoring,
        ivr_prompt_dir=home / "prompts",
        ivr_idle_timeout_s=5.0,
        ivr_tenant=TENANT,
        twilio_open_tenants=[TENANT],  # as the embedded demo: unsigned Twilio (signatures: test_twilio_tenancy.py)
        enroll_min_speech_s=6.0,
        ivr_liveness="off",  # these tests run the passive flow; tests/liveness runs the challenge step
    )
    base.update(over)
    return Settings(**base)  # type: ignore[arg-type]


KEYS = StaticKeys(
    {
        TELEPHONY_KEY: KeyInfo(TENANT, "telephony"),
        SECURITY_KEY: KeyInfo(TENANT, "security"),
        AUDIOHOOK_KEY: KeyInfo(TENANT, "telephony", AUDIOHOOK_SECRET),
    }
)


def build_ivr(settings: Settings, engine: EmbeddingEngine, pins: PinBook | None = None) -> tuple[Pipeline, IvrService]:
    pipe = Pipeline.from_settings(settings, engine=engine)
    ivr = IvrService(settings, engine=engine, verifier=pipe.verifier, keys=KEYS, pins=pins, enroller=pipe.enroller)
    return pipe, ivr


def enroll(pipe: Pipeline, ref: str, samples: np.ndarray, rate: int = 8000) -> None:
    assert pipe.frontend is not None
    pipe.register(TENANT, ref, consent_method="test", consent_text_version="v1", actor="test")
    utt = pipe.frontend.from_samples(samples, rate)  # type: ignore[attr-defined]
    result = pipe.enroll(TENANT, ref, utt, actor="test")
    assert result.enrolled, result


def make_app(ivr: IvrService) -> FastAPI:
    app = FastAPI()
    app.include_router(router)
    app.state.ivr = ivr
    return app


@dataclass
class LiveServer:
    url: str  # http://127.0.0.1:PORT
    ws: str  # ws://127.0.0.1:PORT
    ivr: IvrService
    pipe: Pipeline


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(app: FastAPI) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def fsdd() -> Path:
    if not FSDD.is_dir():
        pytest.skip(f"shared FSDD corpus not found at {FSDD} (it exists on developer machines and in CI)")
    return FSDD


@pytest.fixture(scope="session")
def real_ivr(tmp_path_factory: pytest.TempPathFactory, engine, fsdd: Path) -> Iterator[tuple[Pipeline, IvrService]]:  # type: ignore[no-untyped-def]
    """george enrolled (10 digits x index 0-1, about 7 s of speech) with the real engine; PIN 4321."""
    home = tmp_path_factory.mktemp("ivr-real")
    pins = PinBook()
    pins.set(TENANT, "george", "4321")
    pipe, ivr = build_ivr(ivr_settings(home), engine, pins)
    enroll(pipe, "george", np.concatenate([fsdd_digits("george", "0123456789", i) for i in (0, 1)]))
    yield pipe, ivr
    ivr.close()


@pytest.fixture(scope="session")
def live_server(real_ivr: tuple[Pipeline, IvrService]) -> Iterator[LiveServer]:
    pipe, ivr = real_ivr
    for hostport in serve(make_app(ivr)):
        yield LiveServer(f"http://{hostport}", f"ws://{hostport}", ivr, pipe)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)
