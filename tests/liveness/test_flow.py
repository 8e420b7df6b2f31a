"""The liveness step of the standard flow, pure: a challenge, one re-prompt with new digits, then the fallback."""

from __future__ import annotations

import pytest

from ivr.flows.machine import FlowMachine, Play, StartChallenge, Transfer
from ivr.flows.standard import LIVENESS_FLOW, STANDARD_FLOW, standard_flow
from voiceauth.errors import ConfigError


def test_challenge_then_reprompt_then_pin() -> None:
    m = FlowMachine(LIVENESS_FLOW)
    acts = m.start(speaker_ref="c-1", now_ms=0)
    assert Play("welcome") in acts and StartChallenge("c-1", 1) in acts
    assert m.voice("CHALLENGE_FAILED", 5_000) == [StartChallenge("c-1", 2)]  # new digits, same step
    assert m.voice_deadline_ms == 5_000 + LIVENESS_FLOW.steps["liveness"].timeout_ms
    assert m.voice("CHALLENGE_FAILED", 9_000) == [Play("enter_pin")]
    assert m.method == "" and m.state == "pin"


def test_accept_verifies_reject_is_not_reprompted() -> None:
    m = FlowMachine(LIVENESS_FLOW)
    m.start(speaker_ref="c-1", now_ms=0)
    assert Play("verified") in m.voice("ACCEPT", 4_000) and m.method == "voice"
    m = FlowMachine(LIVENESS_FLOW)
    m.start(speaker_ref="c-1", now_ms=0)
    assert m.voice("REJECT", 4_000) == [Play("enter_pin")]  # a voice mismatch gets no second challenge


def test_agent_fallback_and_settings() -> None:
    m = FlowMachine(standard_flow("challenge", "agent"))
    m.start(speaker_ref="c-1", now_ms=0)
    m.voice("NOT_ENOUGH_SPEECH", 1_000)
    assert Transfer("transfer") in m.voice("NOT_ENOUGH_SPEECH", 2_000) and m.outcome == "transferred"
    assert standard_flow("off") is STANDARD_FLOW
    with pytest.raises(ConfigError, match="use off or challenge"):
        standard_flow("maybe")
