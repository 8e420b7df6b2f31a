"""The IVR's liveness step over real WebSocket clients with the real engine and recogniser: ``streamdouble`` (the
Twilio simulator, extended by one scenario step that answers the challenge it is told by mark) and an L16 client.

lucas is enrolled; each call answers the digits the IVR spoke. A genuine answer is ACCEPT; other digits are
CHALLENGE_FAILED (and the re-prompt with new digits can still be passed); lucas's earlier accepted answer replayed
to a new challenge is not ACCEPT; theo saying the right digits is REJECT. Every FSDD take is said once per module,
so that no genuine answer is (rightly) refused as a replay of an earlier one.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websockets
from sqlalchemy import select

from ivr.serializers.twilio import CHALLENGE_MARK_PREFIX, DECISION_MARK_PREFIX
from ivr.simulate import fsdd_answer, simulate_call
from tests.ivr.conftest import (
    AUDIOHOOK_KEY,
    AUDIOHOOK_SECRET,
    SECURITY_KEY,
    TELEPHONY_KEY,
    LiveServer,
    build_ivr,
    enroll,
    fsdd_digits,
    ivr_settings,
    make_app,
    serve,
)
from tests.liveness.conftest import Caller, wrong
from voiceauth.audio.codecs import l16_encode, mulaw_encode
from voiceauth.store.models import AuditEvent

streamdouble_audio = pytest.importorskip("streamdouble.audio", reason="streamdouble (dev extra) is not installed")
from streamdouble.scenario import Scenario, Step  # noqa: E402
from streamdouble.session import Session, SessionConfig  # noqa: E402

pytestmark = pytest.mark.model

Answer = Callable[[str], np.ndarray]  # the digits the IVR asked for -> 8 kHz audio of the caller's answer


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, engine: Any, fsdd_dir: Path) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("ivr-liveness")
    pipe, ivr = build_ivr(ivr_settings(home, ivr_liveness="challenge", antispoof_mode="off"), engine)
    assert ivr.flow.name.startswith("standard-liveness")
    enroll(pipe, "lucas", np.concatenate([fsdd_digits("lucas", "0123456789", i) for i in (0, 1)]))
    for hostport in serve(make_app(ivr)):
        yield LiveServer(f"http://{hostport}", f"ws://{hostport}", ivr, pipe)
    ivr.close()


@pytest.fixture(scope="module")
def callers(fsdd_dir: Path) -> dict[str, Caller]:
    """One caller per speaker for the whole module: takes 30-49, each said once."""
    return {s: Caller(fsdd_dir, s) for s in ("lucas", "theo")}


def _outcome(server: LiveServer, call_id: str, key: str = TELEPHONY_KEY) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/v1/calls/{call_id}", headers={"X-API-KEY": key}, timeout=10)
    assert r.status_code == 200, r.text
    return dict(r.json())


# -- Twilio: streamdouble ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AnswerChallenge(Step):
    """Stream silence until the agent's ``index``-th challenge mark, then say the answer and pause."""

    index: int
    answer: Answer
    pause_s: float = 2.5
    timeout_s: float = 30.0


class ChallengedCaller(Session):
    """streamdouble's Twilio session with one more step: answering a liveness challenge named by mark."""

    async def _run_step(self, connection: Any, step: Step) -> None:
        if not isinstance(step, AnswerChallenge):
            await super()._run_step(connection, step)
            return
        deadline = self.clock() + step.timeout_s
        while len(self._challenges()) <= step.index:
            if self.clock() > deadline:
                raise AssertionError(f"no challenge {step.index + 1} was announced; marks {self.result.marks_received}")
            await self._stream_frames(connection, [streamdouble_audio.silence_frame()])
        digits = self._challenges()[step.index]
        frames = streamdouble_audio.frame_ulaw(mulaw_encode(step.answer(digits)))
        await self._stream_frames(connection, frames)
        await self._stream_silence(connection, step.pause_s)

    def _challenges(self) -> list[str]:
        marks = self.result.marks_received
        return [m[len(CHALLENGE_MARK_PREFIX) :] for m in marks if m.startswith(CHALLENGE_MARK_PREFIX)]


def _twilio(server: LiveServer, *answers: Answer) -> Any:
    config = SessionConfig(
        custom_parameters={"speaker_id": "lucas"}, response_timeout_s=30.0, quiet_period_s=0.5, max_drain_s=5.0
    )
    steps: list[Step] = [AnswerChallenge(i, a) for i, a in enumerate(answers)]
    session = ChallengedCaller(f"{server.ws}/v1/streams/twilio", scenario=Scenario("liveness", steps), config=config)
    return asyncio.run(session.run())


def _decisions(marks: list[str]) -> list[str]:
    return [m[len(DECISION_MARK_PREFIX) :] for m in marks if m.startswith(DECISION_MARK_PREFIX)]


def test_twilio_liveness_genuine_wrong_then_right_replay_and_impostor(
    live: LiveServer, callers: dict[str, Caller]
) -> None:
    lucas, theo = callers["lucas"], callers["theo"]
    accepted: list[np.ndarray] = []

    def right(digits: str) -> np.ndarray:
        audio = lucas.say(digits)
        accepted.append(audio)
        return audio

    # other digits -> CHALLENGE_FAILED, re-prompted with new digits, which lucas then says -> ACCEPT
    result = _twilio(live, lambda d: lucas.say(wrong(d)), right)
    assert result.violations == [], result.violations
    assert _decisions(result.marks_received) == ["CHALLENGE_FAILED", "ACCEPT"]
    challenges = [m for m in result.marks_received if m.startswith(CHALLENGE_MARK_PREFIX)]
    assert len(challenges) == 2 and challenges[0] != challenges[1]  # new digits for the re-prompt
    sid = result.identity.call_sid
    outcome = _outcome(live, sid)
    assert outcome["decision"] == "ACCEPT" and outcome["method"] == "voice" and outcome["flow_outcome"] == "verified"
    assert "challenge_heard" not in json.dumps(outcome)  # telephony sees decisions only
    staff = _outcome(live, sid, SECURITY_KEY)
    assert staff["challenge_result"] == "passed" and staff["challenges"] == 2

    # the accepted answer replayed to a new challenge
    replay = _twilio(live, lambda d: accepted[0])
    assert _decisions(replay.marks_received)[0] in ("CHALLENGE_FAILED", "SPOOF_SUSPECTED")

    # an impostor saying the right digits
    impostor = _twilio(live, theo.say)
    assert _decisions(impostor.marks_received)[0] == "REJECT"


# -- L16 ------------------------------------------------------------------------------------------------------------
async def _l16_call(server: LiveServer, answer: Answer, speaker: str = "lucas") -> tuple[str, str, str]:
    """One L16 call answering its first challenge -> (call id, digits asked, first decision)."""
    call_id = "l16-" + uuid.uuid4().hex[:10]
    meta = {"content-type": "audio/l16;rate=8000", "call_id": call_id, "speaker_id": speaker}
    url = f"{server.ws}/v1/streams/l16"
    async with websockets.connect(url, additional_headers={"X-API-KEY": TELEPHONY_KEY}) as ws:
        await ws.send(json.dumps(meta))

        async def next_event(kind: str) -> dict[str, Any]:
            async for msg in ws:
                if isinstance(msg, str) and json.loads(msg).get("event") == kind:
                    return dict(json.loads(msg))
            raise AssertionError(f"the stream closed before a {kind} event")

        challenge = await asyncio.wait_for(next_event("challenge"), 30)
        pcm = l16_encode(np.concatenate([answer(challenge["digits"]), np.zeros(8000 * 2, np.float32)]))
        for i in range(0, len(pcm), 320):
            await ws.send(pcm[i : i + 320])
        decision = await asyncio.wait_for(next_event("decision"), 60)
        await ws.send(json.dumps({"event": "stop"}))
    return call_id, challenge["digits"], decision["decision"]


def test_l16_liveness_genuine_other_digits_replay_and_impostor(live: LiveServer, callers: dict[str, Caller]) -> None:
    lucas, theo = callers["lucas"], callers["theo"]
    said: list[np.ndarray] = []

    def right(digits: str) -> np.ndarray:
        said.append(lucas.say(digits))
        return said[-1]

    call_id, digits, decision = asyncio.run(_l16_call(live, right))
    assert decision == "ACCEPT" and len(digits) == live.ivr.settings.challenge_digits
    assert asyncio.run(_l16_call(live, lambda d: lucas.say(wrong(d))))[2] == "CHALLENGE_FAILED"
    replayed = asyncio.run(_l16_call(live, lambda d: said[0]))[2]
    assert replayed in ("CHALLENGE_FAILED", "SPOOF_SUSPECTED")
    assert asyncio.run(_l16_call(live, theo.say))[2] == "REJECT"
    # the audit has what was heard for the accepted call, for security staff
    with live.pipe.store.transaction() as tx:
        rows = tx.session.execute(select(AuditEvent).where(AuditEvent.action == "verify")).scalars().all()
        mine = [json.loads(r.details) for r in rows if json.loads(r.details).get("call_id") == call_id]
    assert mine and mine[0]["challenge_result"] == "passed" and mine[0]["challenge_heard"] == digits


# -- voiceauth call simulate --say-digits ---------------------------------------------------------------------------
def test_simulated_caller_says_matching_or_wrong_fsdd_digits(live: LiveServer, fsdd_dir: Path) -> None:
    """``simulate_call(answer=fsdd_answer(...))``, what ``voiceauth call simulate --say-digits`` runs: L16 and
    AudioHook (one-way: the platform is told the digits and speaks them)."""
    match = fsdd_answer(fsdd_dir, "lucas", "match", first_take=42)
    res = asyncio.run(
        simulate_call("l16", live.ws, np.zeros(0, np.float32), "lucas", speed=0, api_key=TELEPHONY_KEY, answer=match)
    )
    assert res.decisions[:1] == ["ACCEPT"] and len(res.challenges) == 1
    wrong_digits = fsdd_answer(fsdd_dir, "lucas", "wrong", first_take=46)
    res = asyncio.run(
        simulate_call(
            "audiohook",
            live.ws,
            np.zeros(0, np.float32),
            "lucas",
            speed=0,
            api_key=AUDIOHOOK_KEY,
            audiohook_secret=AUDIOHOOK_SECRET,
            answer=wrong_digits,
            max_answers=1,
        )
    )
    assert res.decisions[:1] == ["CHALLENGE_FAILED"] and len(res.challenges[0]) == live.ivr.settings.challenge_digits
