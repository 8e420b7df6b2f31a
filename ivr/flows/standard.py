"""The standard verification call flow: greet, identify (ANI or account number by DTMF), verify by voice, fall
back to a DTMF PIN after REJECT or NOT_ENOUGH_SPEECH, then goodbye or transfer to an agent."""

from __future__ import annotations

from ivr.flows.machine import Flow, Step

__all__ = ["STANDARD_FLOW"]

STANDARD_FLOW = Flow(
    name="standard",
    start="greet",
    steps={
        "greet": Step("say", prompt="greeting", next="identify"),
        "identify": Step("identify", on={"known": "verify", "unknown": "account"}),
        "account": Step(
            "collect",
            prompt="enter_account",
            digits=8,
            slot="account",
            timeout_ms=15_000,
            retries=1,
            on={"collected": "verify", "timeout": "transfer"},
        ),
        "verify": Step(
            "verify",
            timeout_ms=20_000,
            on={"ACCEPT": "verified", "REJECT": "pin", "NOT_ENOUGH_SPEECH": "pin", "*": "transfer"},
        ),
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
    },
)
