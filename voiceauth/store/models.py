"""SQLAlchemy 2 models of the voiceprint store (schema changes go through Alembic: ``store/migrations``).

Biometric rows (enrolment utterances, voiceprints, watchlist entries) hold only AES-256-GCM ciphertext and the id
of the key that made it. Every speaker-owned row cascades on the speaker's deletion (erasure). Audit events hold
no personal data: the subject is a pseudonym, so erasure never has to edit the hash-chained audit log.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "ApiKey",
    "AuditEvent",
    "AuditHead",
    "Base",
    "CallRecord",
    "CallerNumber",
    "Challenge",
    "ConsentRecord",
    "EnrollmentUtterance",
    "Lockout",
    "RateBucket",
    "ReplayFingerprint",
    "Speaker",
    "SpeakerStatus",
    "StoreMeta",
    "Tenant",
    "Threshold",
    "UTCDateTime",
    "VerificationAttempt",
    "Voiceprint",
    "WatchlistEntry",
]


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (naive storage) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store; pass an aware UTC datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)


class SpeakerStatus(StrEnum):
    ACTIVE = "active"
    OPTED_OUT = "opted_out"
    EXPIRED = "expired"  # voiceprint purged by retention; re-enrolment makes the speaker active again


class StoreMeta(Base):
    """Install-wide values (e.g. the pseudonym salt)."""

    __tablename__ = "store_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    operating_point: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Threshold(Base):
    """A tenant's named operating point (calibrated 0-100 scale), overriding the scorer's default."""

    __tablename__ = "thresholds"
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ApiKey(Base):
    """An API key, stored only as a hash (for the HTTP API)."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The AudioHook HTTP-message-signature secret, AES-256-GCM ciphertext (None: no secret set).
    audiohook_key_id: Mapped[str | None] = mapped_column(String(32), default=None)
    audiohook_secret: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    # The tenant's Twilio auth token (X-Twilio-Signature of its streams and TwiML webhook), AES-256-GCM ciphertext.
    twilio_key_id: Mapped[str | None] = mapped_column(String(32), default=None)
    twilio_auth_token: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)


class Speaker(Base):
    __tablename__ = "speakers"
    __table_args__ = (UniqueConstraint("tenant_id", "external_ref", name="uq_speakers_tenant_ref"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    external_ref: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), default=SpeakerStatus.ACTIVE.value)
    voice_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ConsentRecord(Base):
    """Who consented, when, how (IVR prompt, web form...) and to which text version."""

    __tablename__ = "consents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    speaker_id: Mapped[int] = mapped_column(ForeignKey("speakers.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(64))
    text_version: Mapped[str] = mapped_column(String(64))
    recorded_by: Mapped[str] = mapped_column(String(128), default="")
    given_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)


class EnrollmentUtterance(Base):
    __tablename__ = "enrollment_utterances"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    speaker_id: Mapped[int] = mapped_column(ForeignKey("speakers.id", ondelete="CASCADE"), index=True)
    key_id: Mapped[str] = mapped_column(String(32))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # AES-256-GCM ciphertext (telephone band)
    # the full-band embedding of wideband audio (AES-256-GCM ciphertext under ``key_id``), None for phone audio
    embedding_wide: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    net_speech_s: Mapped[float] = mapped_column(Float)
    snr_db: Mapped[float] = mapped_column(Float)
    clipping_ratio: Mapped[float] = mapped_column(Float)
    level_dbfs: Mapped[float] = mapped_column(Float)
    narrowband: Mapped[bool] = mapped_column(Boolean)
    # the network that made ``embedding`` (voiceauth.embedding.space); NULL: before 0006, the released one
    space: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Voiceprint(Base):
    __tablename__ = "voiceprints"
    speaker_id: Mapped[int] = mapped_column(ForeignKey("speakers.id", ondelete="CASCADE"), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # AES-256-GCM ciphertext (telephone band)
    # full-band voiceprint (AES-256-GCM ciphertext under ``key_id``): None unless enough wideband speech was enrolled
    embedding_wide: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    net_speech_s: Mapped[float] = mapped_column(Float)
    n_utterances: Mapped[int] = mapped_column(Integer)
    narrowband: Mapped[bool] = mapped_column(Boolean)
    # the network that made ``embedding`` (voiceauth.embedding.space); NULL: before 0006, the released one
    space: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class Lockout(Base):
    """Consecutive failed verifications of a claimed identity, counted across calls."""

    __tablename__ = "lockouts"
    speaker_id: Mapped[int] = mapped_column(ForeignKey("speakers.id", ondelete="CASCADE"), primary_key=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class VerificationAttempt(Base):
    __tablename__ = "verification_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    speaker_id: Mapped[int | None] = mapped_column(ForeignKey("speakers.id", ondelete="CASCADE"), index=True)
    decision: Mapped[str] = mapped_column(String(32))
    raw_cosine: Mapped[float | None] = mapped_column(Float, default=None)
    normalized: Mapped[float | None] = mapped_column(Float, default=None)
    calibrated: Mapped[float | None] = mapped_column(Float, default=None)
    threshold: Mapped[float | None] = mapped_column(Float, default=None)
    operating_point: Mapped[str] = mapped_column(String(64), default="")
    net_speech_s: Mapped[float] = mapped_column(Float)
    narrowband: Mapped[bool] = mapped_column(Boolean)
    watchlist_entry_id: Mapped[int | None] = mapped_column(Integer, default=None)
    call_id: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    spoof_score: Mapped[float | None] = mapped_column(Float, default=None)
    spoof_reason: Mapped[str | None] = mapped_column(String(32), default=None)


class ReplayFingerprint(Base):
    """An attempt's audio fingerprint (for the replay check), pruned beyond ``replay_retention_s``."""

    __tablename__ = "replay_fingerprints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    speaker_id: Mapped[int] = mapped_column(ForeignKey("speakers.id", ondelete="CASCADE"), index=True)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class Challenge(Base):
    """A liveness challenge: a random digit string the caller must say (``voiceauth.liveness``), single use.

    The digits are kept only as an HMAC (``Keyring.lookup_hashes`` under data key ``hash_key_id``); ``subject`` is
    the claimed reference's pseudonym (a challenge is issued for any reference, enrolled or not). ``used_at`` is set
    by one conditional UPDATE, so two workers cannot both use a challenge. ``result`` is the outcome of its
    verification (``passed`` | ``wrong-digits`` | ``no-digits`` | ``not-scored``), None while unused."""

    __tablename__ = "challenges"
    __table_args__ = (Index("ix_challenges_tenant_created", "tenant_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(64))
    n_digits: Mapped[int] = mapped_column(Integer)
    hash_key_id: Mapped[str] = mapped_column(String(32))
    digits_hash: Mapped[str] = mapped_column(String(64))
    call_id: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    result: Mapped[str | None] = mapped_column(String(32), default=None)
    attempt_id: Mapped[int | None] = mapped_column(Integer, default=None)


class CallRecord(Base):
    """One telephony call's outcome (``GET /v1/calls``): decisions and timings; scores only in ``details``."""

    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("tenant_id", "call_id", name="uq_calls_tenant_call"),
        Index("ix_calls_tenant_speaker_started", "tenant_id", "speaker_ref", "started_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    call_id: Mapped[str] = mapped_column(String(128))  # Twilio callSid, AudioHook session id, L16 call id
    protocol: Mapped[str] = mapped_column(String(16))
    speaker_ref: Mapped[str] = mapped_column(String(256), default="")  # the claimed customer reference
    speaker_id: Mapped[int | None] = mapped_column(
        ForeignKey("speakers.id", ondelete="CASCADE"), default=None, index=True
    )
    decision: Mapped[str | None] = mapped_column(String(32), default=None)  # telephony decision; None: undecided
    speech_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    decided_at_ms: Mapped[int | None] = mapped_column(Integer, default=None)  # ms of call audio when decided
    method: Mapped[str] = mapped_column(String(16), default="")  # voice | pin | ""
    flow_outcome: Mapped[str] = mapped_column(String(32), default="")
    reason: Mapped[str] = mapped_column(String(64), default="")  # why the call ended
    details: Mapped[str] = mapped_column(Text, default="{}")  # staff-only JSON (score, threshold...), no audio
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)


class CallerNumber(Base):
    """A tenant's calling number (ANI) -> speaker mapping; the number only as keyed hash and ciphertext.

    ``number_hash`` is HMAC-SHA256 of the normalised number under a key derived from data key ``hash_key_id``
    (lookups try every key of the keyring); ``number`` is its AES-256-GCM ciphertext (for masked listings and
    re-hashing after a data-key rotation).
    """

    __tablename__ = "caller_numbers"
    __table_args__ = (UniqueConstraint("tenant_id", "number_hash", name="uq_caller_numbers_tenant_hash"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    speaker_id: Mapped[int] = mapped_column(ForeignKey("speakers.id", ondelete="CASCADE"), index=True)
    hash_key_id: Mapped[str] = mapped_column(String(32))
    number_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(32))
    number: Mapped[bytes] = mapped_column(LargeBinary)  # AES-256-GCM ciphertext
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class WatchlistEntry(Base):
    """A known fraudster's voiceprint (encrypted), searched 1:N on every enrolment and verification."""

    __tablename__ = "watchlist_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(256))
    key_id: Mapped[str] = mapped_column(String(32))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # AES-256-GCM ciphertext
    # the network that made ``embedding`` (voiceauth.embedding.space); NULL: before 0006, the released one
    space: Mapped[str | None] = mapped_column(String(32), default=None)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AuditEvent(Base):
    """Append-only, hash-chained: ``hash = sha256(prev_hash + canonical(event))``; ``seq`` has no gaps."""

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    tenant_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)  # no FK: outlives tenants
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128), default="")  # a pseudonym, never an external reference
    outcome: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON; never embeddings or keys
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class RateBucket(Base):
    """One API key's token bucket, shared by every worker (``voiceauth.api.ratelimit.DatabaseRateLimiter``)."""

    __tablename__ = "rate_buckets"
    key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)  # epoch seconds of the last token taken


class AuditHead(Base):
    """The chain's last (seq, hash): locked to append, and detects removal of the newest rows."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
