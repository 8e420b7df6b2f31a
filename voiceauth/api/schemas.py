"""Request and response bodies of the HTTP API (the OpenAPI schema is generated from these)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from voiceauth.verification import Decision

__all__ = [
    "REF_PATTERN",
    "AuditEventOut",
    "AuditPage",
    "ChainOut",
    "ChallengeOut",
    "ConsentIn",
    "ConsentOut",
    "EnrollmentOut",
    "ExternalRef",
    "KeyCreateIn",
    "KeyCreatedOut",
    "KeyOut",
    "KpiOut",
    "OperatingPointIn",
    "SpeakerCreateIn",
    "SpeakerOut",
    "TenantCreateIn",
    "TenantCreatedOut",
    "TenantOut",
    "ThresholdIn",
    "ThresholdsOut",
    "VerificationOut",
    "VoiceIn",
    "WatchlistEntryOut",
    "WatchlistHitOut",
]

#: customer numbers and similar references: letters, digits and ``. _ : @ + -``, 1-128 characters
REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+\-]{0,127}$"
ExternalRef = Annotated[str, Path(pattern=REF_PATTERN, description="The speaker's external reference (customer no.).")]
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"
Role = Literal["telephony", "security", "admin"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConsentIn(_In):
    method: str = Field(min_length=1, max_length=64, description="How consent was given, e.g. `ivr`, `web_form`.")
    text_version: str = Field(min_length=1, max_length=64, description="Version of the consent text agreed to.")


class SpeakerCreateIn(_In):
    external_ref: str = Field(pattern=REF_PATTERN, description="Your reference for the caller (customer number).")
    consent: ConsentIn


class ConsentOut(BaseModel):
    method: str
    text_version: str
    given_at: dt.datetime


class SpeakerOut(BaseModel):
    external_ref: str
    status: str = Field(description="`active`, `opted_out` or `expired`.")
    enrolled: bool
    progress: float = Field(ge=0, le=100, description="Enrolment progress toward the net-speech target.")
    net_speech_s: float
    utterances: int
    voice_disabled: bool
    consent: ConsentOut | None = None


class EnrollmentOut(BaseModel):
    progress: float = Field(ge=0, le=100)
    enrolled: bool = Field(description="A usable voiceprint exists.")
    feedback: list[str] = Field(description="`OK` when the utterance was used, else why not (quality codes).")
    accepted: bool = Field(description="This utterance was added to the enrolment.")
    net_speech_s: float
    utterances: int
    watchlist_hit: WatchlistHitOut | None = Field(default=None, description="Security keys only.")


class WatchlistHitOut(BaseModel):
    entry_id: int
    label: str
    score: float


class VerificationOut(BaseModel):
    decision: Decision
    score: float | None = Field(default=None, description="Calibrated 0-100; security keys only.")
    raw_score: float | None = Field(default=None, description="Plain cosine; security keys only.")
    threshold: float | None = Field(default=None, description="Security keys only.")
    operating_point: str | None = Field(default=None, description="Security keys only.")
    net_speech_s: float | None = Field(default=None, description="Security keys only.")
    locked_until: dt.datetime | None = Field(default=None, description="Security keys only.")
    watchlist_hit: WatchlistHitOut | None = Field(default=None, description="Security keys only.")
    attempt_id: int | None = Field(default=None, description="Security keys only.")
    spoof_score: float | None = Field(
        default=None, description="AASIST spoof log-odds (higher = more likely synthetic); security keys only."
    )
    spoof_threshold: float | None = Field(default=None, description="Spoof threshold applied; security keys only.")
    spoof_reason: Literal["replay", "synthetic"] | None = Field(
        default=None, description="Why the audio is a suspected spoof (also in monitor mode); security keys only."
    )
    band: Literal["full", "telephone"] | None = Field(
        default=None,
        description="Band the voice was scored in: full (16 kHz probe and full-band voiceprint) or telephone;"
        " security keys only.",
    )
    challenge_result: Literal["passed", "wrong-digits", "no-digits"] | None = Field(
        default=None, description="What the liveness digits said against the challenge; security keys only."
    )


class ChallengeOut(BaseModel):
    challenge_id: str = Field(description="Name it as `challenge_id` in the verification that answers it.")
    digits: str = Field(description='The digits the caller must say (say each digit; 0 as "zero").')
    expires_at: dt.datetime = Field(description="The answer must arrive before this; one verification only.")


class VoiceIn(_In):
    enabled: bool = Field(description="false disables voice for this speaker; true re-enables and clears lockout.")


class TenantCreateIn(_In):
    name: str = Field(pattern=_NAME)


class TenantOut(BaseModel):
    name: str
    operating_point: str | None
    created_at: dt.datetime


class TenantCreatedOut(BaseModel):
    name: str
    admin_key: str = Field(description="The new tenant's first admin key; shown once, never again.")


class KeyCreateIn(_In):
    role: Role
    label: str = Field(default="", max_length=128)
    twilio_auth_token: str | None = Field(
        default=None,
        min_length=16,
        max_length=128,
        description="The tenant's Twilio account auth token (telephony or admin key), stored encrypted: the tenant's"
        " Twilio streams and TwiML webhook (/v1/streams/twilio/{tenant}, /v1/twiml/{tenant}) must then be signed"
        " with it. Never returned.",
    )


class KeyOut(BaseModel):
    id: int
    prefix: str
    role: str
    label: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None
    twilio: bool = Field(default=False, description="The key holds a Twilio auth token (never shown).")


class KeyCreatedOut(KeyOut):
    key: str = Field(description="The API key; shown once, stored only as a hash.")


class ThresholdIn(_In):
    value: float = Field(ge=0, le=100, description="Threshold on the calibrated 0-100 score.")


class OperatingPointIn(_In):
    name: str | None = Field(pattern=_NAME, description="The named threshold decisions use; null = the default.")


class SpoofThresholdIn(_In):
    value: float = Field(ge=-50, le=50, description="AASIST spoof log-odds at or above which audio is a spoof.")


class SpoofThresholdOut(BaseModel):
    mode: Literal["off", "monitor", "enforce"] = Field(
        description="monitor: scored and audited only; enforce: SPOOF_SUSPECTED at or above `effective`."
    )
    default: float = Field(description="The service's spoof threshold (settings, or the countermeasure's own).")
    override: float | None = Field(description="This tenant's own value (threshold name `spoof`).")
    effective: float


class ThresholdsOut(BaseModel):
    operating_point: str = Field(description="The named threshold this tenant's decisions use.")
    defaults: dict[str, float] = Field(description="Measured operating points shipped with the scorer.")
    overrides: dict[str, float] = Field(description="This tenant's own values.")
    effective: dict[str, float]
    spoof: SpoofThresholdOut | None = Field(default=None, description="The anti-spoofing threshold (log-odds).")


class WatchlistEntryOut(BaseModel):
    id: int
    label: str
    created_at: dt.datetime


class AuditEventOut(BaseModel):
    seq: int
    ts: dt.datetime
    actor: str
    action: str
    subject: str
    outcome: str
    details: dict[str, object]


class AuditPage(BaseModel):
    events: list[AuditEventOut]
    next_after_seq: int | None


class ChainOut(BaseModel):
    ok: bool
    events: int
    first_bad_seq: int | None
    reason: str


class KpiOut(BaseModel):
    since: dt.datetime
    speakers: int
    enrolled: int
    opted_out: int
    voice_disabled: int
    verifications: dict[str, int] = Field(description="Attempts since `since` by decision.")
    accept_rate: float | None
    watchlist_hits: int
    enrollment_utterances: int


EnrollmentOut.model_rebuild()
