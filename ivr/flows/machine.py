"""A declarative IVR call flow and the pure state machine that runs it.

A flow is data: named :class:`Step`\\ s, each of one ``kind`` (``say``, ``identify``, ``collect``, ``verify``,
``liveness``, ``check_pin``, ``transfer``, ``end``), an optional prompt, a timeout and retry count, and ``on``: the
next step for each outcome. :class:`FlowMachine` takes events (call started, a digit, the voice decision, the PIN
check, the audio clock advancing) and returns actions (play a prompt, start voice verification, check a PIN,
transfer, hang up). A ``liveness`` step verifies like ``verify`` on the caller's answer to a fresh digit challenge
(:class:`StartChallenge`); ``CHALLENGE_FAILED`` or ``NOT_ENOUGH_SPEECH`` re-prompts with new digits up to
``retries`` times before its ``on`` mapping decides. Time is the call's own audio clock in milliseconds, so flows
are deterministic and testable without sockets or sleeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from voiceauth.errors import ConfigError

__all__ = [
    "Action",
    "CheckPin",
    "Flow",
    "FlowMachine",
    "Hangup",
    "Play",
    "StartChallenge",
    "StartVoice",
    "Step",
    "Transfer",
]

Kind = Literal["say", "identify", "collect", "verify", "liveness", "check_pin", "transfer", "end"]

#: liveness outcomes that re-prompt with new digits while the step has retries left
_RECHALLENGE = ("CHALLENGE_FAILED", "NOT_ENOUGH_SPEECH")


@dataclass(frozen=True)
class Step:
    kind: Kind
    prompt: str | None = None
    on: Mapping[str, str] = field(default_factory=dict)  # outcome -> next step
    next: str | None = None  # for say: the step after it
    digits: int = 0  # collect: how many digits (``#`` ends early)
    timeout_ms: int = 10_000
    retries: int = 0
    slot: str = ""  # collect: where the digits go ("account" or "pin")


@dataclass(frozen=True)
class Flow:
    name: str
    start: str
    steps: Mapping[str, Step]

    def __post_init__(self) -> None:
        names = set(self.steps)
        if self.start not in names:
            raise ConfigError(f"flow {self.name!r}: start step {self.start!r} is not defined")
        for n, s in self.steps.items():
            for target in [*s.on.values(), *([s.next] if s.next else [])]:
                if target not in names:
                    raise ConfigError(f"flow {self.name!r}: step {n!r} goes to undefined step {target!r}")


# -- actions ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Play:
    prompt: str


@dataclass(frozen=True)
class StartVoice:
    speaker_ref: str


@dataclass(frozen=True)
class StartChallenge:
    """Issue a fresh digit challenge, speak it, and verify the caller's answer (digits and voice)."""

    speaker_ref: str
    attempt: int  # 1 for the first challenge, 2 for the re-prompt...


@dataclass(frozen=True)
class CheckPin:
    speaker_ref: str
    pin: str


@dataclass(frozen=True)
class Transfer:
    reason: str


@dataclass(frozen=True)
class Hangup:
    outcome: str  # "verified" | "transferred" | "failed"


Action = Play | StartVoice | StartChallenge | CheckPin | Transfer | Hangup


class FlowMachine:
    """Runs one call through a :class:`Flow`. Pure; not thread-safe."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.state = ""
        self.speaker_ref = ""
        self.method = ""  # how the caller was verified: "voice" | "pin" | ""
        self.voice_decision = ""
        self.outcome = ""
        self._digits = ""
        self._entered_ms = 0
        self._tries = 0
        self._now = 0
        self._pin = ""
        self._pin_failures = 0

    @property
    def step(self) -> Step:
        return self.flow.steps[self.state]

    @property
    def collecting(self) -> bool:
        return bool(self.state) and self.step.kind == "collect"

    @property
    def voice_deadline_ms(self) -> int | None:
        """When the verify step gives up waiting for a voice decision (the session then asks for one)."""
        if not self.state or self.done or self.step.kind not in ("verify", "liveness"):
            return None
        return self._entered_ms + self.step.timeout_ms

    @property
    def done(self) -> bool:
        return bool(self.outcome)

    # -- events -------------------------------------------------------------------------------------------------
    def start(self, *, speaker_ref: str = "", now_ms: int = 0) -> list[Action]:
        self.speaker_ref = speaker_ref
        self._now = now_ms
        return self._enter(self.flow.start)

    def digit(self, d: str, now_ms: int) -> list[Action]:
        self._now = now_ms
        if not self.collecting or self.done:
            return []
        s = self.step
        if d == "#":
            return self._collected() if self._digits else []
        if d == "*":
            self._digits = ""
            return []
        self._digits += d
        return self._collected() if len(self._digits) >= s.digits else []

    def voice(self, decision: str, now_ms: int) -> list[Action]:
        self._now = now_ms
        self.voice_decision = decision
        if self.done or not self.state or self.step.kind not in ("verify", "liveness"):
            return []
        if decision == "ACCEPT":
            self.method = "voice"
        if self.step.kind == "liveness" and decision in _RECHALLENGE and self._tries < self.step.retries:
            self._tries += 1
            self._entered_ms = now_ms
            return [StartChallenge(self.speaker_ref, self._tries + 1)]
        return self._go(decision)

    def pin_result(self, ok: bool, now_ms: int) -> list[Action]:
        self._now = now_ms
        if self.done or self.step.kind != "check_pin":
            return []
        if ok:
            self.method = "pin"
            return self._go("ok")
        self._pin_failures += 1
        if self._pin_failures > self.step.retries:
            return self._go("failed")
        return self._go("retry")

    def tick(self, now_ms: int) -> list[Action]:
        """The audio clock advanced: fire the current step's timeout (with its retries)."""
        self._now = now_ms
        if self.done or not self.state or self.step.kind != "collect":
            return []
        if now_ms - self._entered_ms < self.step.timeout_ms:
            return []
        if self.step.kind == "collect" and self._tries < self.step.retries:
            self._tries += 1
            self._digits, self._entered_ms = "", now_ms
            return [Play(self.step.prompt)] if self.step.prompt else []
        return self._go("timeout")

    # -- internals ----------------------------------------------------------------------------------------------
    def _collected(self) -> list[Action]:
        s = self.step
        digits, self._digits = self._digits, ""
        if s.slot == "account":
            self.speaker_ref = digits
            return self._go("collected")
        self._pin = digits
        return self._go("collected")

    def _go(self, outcome: str) -> list[Action]:
        s = self.step
        target = s.on.get(outcome) or s.on.get("*")
        if target is None:
            return self._finish("failed")
        return self._enter(target)

    def _enter(self, name: str) -> list[Action]:
        if name != self.state:
            self._tries = 0
        self.state = name
        self._entered_ms = self._now
        self._digits = ""
        s = self.step
        actions: list[Action] = [Play(s.prompt)] if s.prompt else []
        if s.kind == "say":
            return actions + (self._enter(s.next) if s.next else self._finish("completed"))
        if s.kind == "identify":
            return actions + self._go("known" if self.speaker_ref else "unknown")
        if s.kind == "verify":
            return [*actions, StartVoice(self.speaker_ref)]
        if s.kind == "liveness":
            return [*actions, StartChallenge(self.speaker_ref, 1)]
        if s.kind == "check_pin":
            return [*actions, CheckPin(self.speaker_ref, self._pin)]
        if s.kind == "transfer":
            return [*actions, Transfer(name), *self._finish("transferred")]
        if s.kind == "end":
            return [*actions, *self._finish("verified" if self.method else "failed")]
        return actions

    def _finish(self, outcome: str) -> list[Action]:
        if not self.outcome:
            self.outcome = outcome
        return [Hangup(self.outcome)]
