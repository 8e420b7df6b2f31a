"""The standard verification call flow: greet, identify (ANI or account number by DTMF), verify by voice, fall
back to a DTMF PIN after REJECT or NOT_ENOUGH_SPEECH, then goodbye or transfer to an agent.

With liveness (``Settings.ivr_liveness = "challenge"``, :func:`standard_flow`) the voice step is a challenge: the
IVR speaks a fresh random digit string, the caller says it, and the digits and the voice are checked on that same
speech (``voiceauth.liveness``); one re-prompt with new digits, then the fallback (PIN or an agent).
"""

from __future__ import annotations

from collections.abc import Mapping

from ivr.flows.machine import Flow, Step
from voiceauth.errors import ConfigError

__all__ = ["LIVENESS_FLOW", "STANDARD_FLOW", "standard_flow"]

_COMMON: Mapping[str, Step] = {
    "pin": Step(
        "collect",
        prompt="enter_pin",
        digits=4,
        slot="pin",
        timeout_ms=15_000,
        retries=1,
        on={"collected": "check_pin", "timeout": "transfer"},
    ),
    "check_pin": Step("check_pin", retries=2, on={"ok": "verified", "retry": "pin", "failed": "transfer"}),
    "verified": Step("say", prompt="verified", next="goodbye"),
    "transfer": Step("transfer", prompt="transfer"),
    "goodbye": Step("end", prompt="goodbye"),
}


def _account(then: str) -> Step:
    return Step(
        "collect",
        prompt="enter_account",
        digits=8,
        slot="account",
        timeout_ms=15_000,
        retries=1,
        on={"collected": then, "timeout": "transfer"},
    )


STANDARD_FLOW = Flow(
    name="standard",
    start="greet",
    steps={
        "greet": Step("say", prompt="greeting", next="identify"),
        "identify": Step("identify", on={"known": "verify", "unknown": "account"}),
        "account": _account("verify"),
        "verify": Step(
            "verify",
            timeout_ms=20_000,
            on={"ACCEPT": "verified", "REJECT": "pin", "NOT_ENOUGH_SPEECH": "pin", "*": "transfer"},
        ),
        **_COMMON,
    },
)


def _liveness_flow(fallback: str) -> Flow:
    if fallback not in ("pin", "agent"):
        raise ConfigError(f"liveness fallback {fallback!r} is not known; use pin or agent")
    then = "pin" if fallback == "pin" else "transfer"
    return Flow(
        name=f"standard-liveness-{fallback}",
        start="greet",
        steps={
            "greet": Step("say", prompt="welcome", next="identify"),
            "identify": Step("identify", on={"known": "liveness", "unknown": "account"}),
            "account": _account("liveness"),
            "liveness": Step(
                "liveness",
                timeout_ms=20_000,  # per challenge: the prompt, the answer and its closing silence
                retries=1,  # one re-prompt with new digits after CHALLENGE_FAILED or NOT_ENOUGH_SPEECH
                on={
                    "ACCEPT": "verified",
                    "REJECT": then,
                    "CHALLENGE_FAILED": then,
                    "NOT_ENOUGH_SPEECH": then,
                    "*": "transfer",
                },
            ),
            **_COMMON,
        },
    )


LIVENESS_FLOW = _liveness_flow("pin")


def standard_flow(liveness: str = "challenge", fallback: str = "pin") -> Flow:
    """The standard flow for ``Settings.ivr_liveness`` (off | challenge) and ``ivr_liveness_fallback`` (pin | agent)."""
    if liveness == "off":
        return STANDARD_FLOW
    if liveness == "challenge":
        return LIVENESS_FLOW if fallback == "pin" else _liveness_flow(fallback)
    raise ConfigError(f"ivr_liveness {liveness!r} is not known; use off or challenge")
