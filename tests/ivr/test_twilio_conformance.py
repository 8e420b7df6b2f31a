"""Conformance: the real Twilio simulator ``streamdouble`` drives /v1/streams/twilio with FSDD digit strings.

Real engine: the enrolled speaker is ACCEPTed, another speaker REJECTed, silence is NOT_ENOUGH_SPEECH; the
simulator reports no protocol violations, and outcomes are readable at GET /v1/calls (decisions, never scores).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from ivr.serializers.twilio import DECISION_MARK_PREFIX
from tests.ivr.conftest import SECURITY_KEY, TELEPHONY_KEY, LiveServer, fsdd_digits

streamdouble_api = pytest.importorskip("streamdouble.api", reason="streamdouble (dev extra) is not installed")
from streamdouble.session import SessionConfig  # noqa: E402

pytestmark = pytest.mark.model


def _wav(path: Path, samples: np.ndarray) -> Path:
    sf.write(path, samples, 8000, subtype="PCM_16")
    return path


def _call(server: LiveServer, audio: Path, speaker: str):  # type: ignore[no-untyped-def]
    config = SessionConfig(
        custom_parameters={"speaker_id": speaker},
        response_timeout_s=30.0,
        quiet_period_s=0.5,
        max_drain_s=20.0,
    )
    return asyncio.run(streamdouble_api.call(f"{server.ws}/v1/streams/twilio", audio_path=audio, config=config))


def _outcome(server: LiveServer, call_sid: str, key: str = TELEPHONY_KEY) -> dict:  # type: ignore[type-arg]
    r = httpx.get(f"{server.url}/v1/calls/{call_sid}", headers={"X-API-KEY": key}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_streamdouble_accept_reject_silence(live_server: LiveServer, tmp_path: Path) -> None:
    digits = "3141592653"
    calls = {
        "accept": _wav(tmp_path / "george.wav", fsdd_digits("george", digits, 40)),
        "reject": _wav(tmp_path / "jackson.wav", fsdd_digits("jackson", digits, 40)),
        "silence": _wav(tmp_path / "silence.wav", np.zeros(8000 * 4, dtype=np.float32)),
    }
    expected = {"accept": "ACCEPT", "reject": "REJECT", "silence": "NOT_ENOUGH_SPEECH"}
    for name, audio in calls.items():
        report = _call(live_server, audio, "george")
        assert report.violations == [], (name, report.violations)
        assert report.spoke, f"{name}: the service sent no prompt audio"
        outcome = _outcome(live_server, report.result.identity.call_sid)
        assert outcome["decision"] == expected[name], (name, outcome)
        assert outcome["speaker_id"] == "george"
        assert "score" not in outcome and "threshold" not in outcome
        if name == "silence":
            assert outcome["speech_seconds"] < 1.0
        else:
            # decided while the caller was still talking, and told to the IVR as a mark
            assert outcome["speech_seconds"] >= live_server.ivr.policy.min_speech_s
            assert DECISION_MARK_PREFIX + expected[name] in report.result.marks_received, report.result.marks_received
            assert outcome["decided_at_ms"] < report.result.frames_sent * 20
        if name == "accept":
            staff = _outcome(live_server, report.result.identity.call_sid, SECURITY_KEY)
            assert staff["score"] >= staff["threshold"]
            assert outcome["method"] == "voice" and outcome["flow_outcome"] == "verified"
        if name == "reject":
            staff = _outcome(live_server, report.result.identity.call_sid, SECURITY_KEY)
            assert staff["score"] < staff["threshold"]


def test_calls_by_speaker_newest_first(live_server: LiveServer, tmp_path: Path) -> None:
    audio = _wav(tmp_path / "short.wav", np.zeros(8000, dtype=np.float32))
    first = _call(live_server, audio, "nobody-1").result.identity.call_sid
    second = _call(live_server, audio, "nobody-1").result.identity.call_sid
    r = httpx.get(
        f"{live_server.url}/v1/calls", params={"speaker_id": "nobody-1"}, headers={"X-API-KEY": TELEPHONY_KEY}
    )
    ids = [c["call_id"] for c in r.json()["calls"]]
    assert ids[:2] == [second, first]
    assert r.json()["calls"][0]["decision"] == "NOT_ENOUGH_SPEECH"
    assert httpx.get(f"{live_server.url}/v1/calls/{first}").status_code == 401
