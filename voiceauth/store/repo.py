"""The voiceprint store: one :class:`Store` per process, one :class:`StoreTx` per unit of work.

Everything a unit of work writes (an utterance, the voiceprint it changes, the audit event recording it) commits
together or not at all::

    with store.transaction() as tx:
        spk = tx.speaker(tenant.id, "customer-42", lock=True)
        ...

Embeddings are encrypted on the way in and decrypted on the way out (see :mod:`voiceauth.store.crypto`);
callers only ever see float32 arrays.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from voiceauth.audio.types import Quality
from voiceauth.config import Settings
from voiceauth.embedding.base import FloatArray
from voiceauth.embedding.space import RELEASED_SPACE, row_space
from voiceauth.errors import AlreadyExists, DataKeyError, NotFound, StoreError, VoiceprintUnreadable
from voiceauth.store import audit as _audit
from voiceauth.store.aad import api_secret_aad, embedding_aad, watchlist_aad
from voiceauth.store.crypto import Keyring, encode_vector, load_keyring
from voiceauth.store.db import create_db_engine, database_url, migrate
from voiceauth.store.models import (
    ApiKey,
    CallRecord,
    ConsentRecord,
    EnrollmentUtterance,
    Lockout,
    ReplayFingerprint,
    Speaker,
    SpeakerStatus,
    StoreMeta,
    Tenant,
    Threshold,
    Voiceprint,
    WatchlistEntry,
)

__all__ = [
    "API_KEY_SECRETS",
    "Clock",
    "StoredUtterance",
    "StoredVoiceprint",
    "Store",
    "StoreTx",
    "open_store",
    "utcnow",
]

log = logging.getLogger(__name__)

#: replay fingerprints kept per speaker (the newest; older ones within the retention are dropped first): a caller's
#: 500 most recent attempts, about 0.25 s of comparison at the most
REPLAY_HISTORY_MAX = 500

Clock = Callable[[], dt.datetime]

#: secrets kept encrypted on ``api_keys`` rows: ciphertext column -> the column of its data key id
API_KEY_SECRETS = {"audiohook_secret": "audiohook_key_id", "twilio_auth_token": "twilio_key_id"}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _row_aad(table: str, row: EnrollmentUtterance | Voiceprint, key_id: str, *, wide: bool = False) -> bytes:
    """AAD of a speaker row's embedding (``wide``: the full-band one): speaker, data key, network, band."""
    return embedding_aad(table, row.speaker_id, key_id=key_id, space=row.space, narrowband=row.narrowband, wide=wide)


def _watch_aad(row: WatchlistEntry, key_id: str) -> bytes:
    return watchlist_aad(row.tenant_id, key_id=key_id, space=row.space, label=row.label)


def _api_aad(column: str, row_id: int, tenant_id: int, key_id: str) -> bytes:
    return api_secret_aad(column, row_id, tenant_id=tenant_id, key_id=key_id)


def _seal_row(
    keyring: Keyring, table: str, row: EnrollmentUtterance | Voiceprint, embedding: bytes, embedding_wide: bytes | None
) -> None:
    row.key_id, row.embedding = keyring.encrypt_bound(embedding, lambda k: _row_aad(table, row, k))
    row.embedding_wide = None
    if embedding_wide is not None:
        # the same (active) key as ``embedding``: a row keeps one key id
        _, row.embedding_wide = keyring.encrypt_bound(embedding_wide, lambda k: _row_aad(table, row, k, wide=True))


def _vec(vec: FloatArray) -> bytes:
    return encode_vector(vec)


def _vec_or_none(vec: FloatArray | None) -> bytes | None:
    return None if vec is None else encode_vector(vec)


@dataclass(frozen=True)
class StoredUtterance:
    id: int
    embedding: FloatArray  # telephone band
    net_speech_s: float
    narrowband: bool
    embedding_wide: FloatArray | None = None  # full band (wideband audio only)
    space: str = RELEASED_SPACE  # the network that made ``embedding`` (voiceauth.embedding.space)


@dataclass(frozen=True)
class StoredVoiceprint:
    embedding: FloatArray  # telephone band: every probe can be scored against it
    net_speech_s: float
    n_utterances: int
    narrowband: bool
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    expires_at: dt.datetime
    embedding_wide: FloatArray | None = None  # full band: only for full-band probes (None: not enough wideband)
    space: str = RELEASED_SPACE  # the network that made ``embedding`` (voiceauth.embedding.space)


class StoreTx:
    """Operations inside one database transaction (obtain from :meth:`Store.transaction`)."""

    def __init__(self, session: Session, keyring: Keyring, clock: Clock, salt: bytes) -> None:
        self.session = session
        self.keyring = keyring
        self.clock = clock
        self._salt = salt

    # -- audit --------------------------------------------------------------------------------------
    def pseudonym(self, tenant_id: int, external_ref: str) -> str:
        """A stable pseudonym of a speaker for audit rows (HMAC with this install's salt)."""
        mac = hmac.new(self._salt, f"{tenant_id}\x00{external_ref}".encode(), hashlib.sha256)
        return "p:" + mac.hexdigest()[:32]

    def audit(
        self,
        action: str,
        *,
        actor: str,
        tenant_id: int | None = None,
        speaker: Speaker | None = None,
        subject: str = "",
        outcome: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> None:
        if speaker is not None:
            tenant_id = speaker.tenant_id
            subject = self.pseudonym(speaker.tenant_id, speaker.external_ref)
        _audit.append_event(
            self.session,
            ts=self.clock(),
            actor=actor,
            action=action,
            tenant_id=tenant_id,
            subject=subject,
            outcome=outcome,
            details=details,
        )

    # -- tenants and thresholds -----------------------------------------------------------------------
    def tenant(self, name: str) -> Tenant:
        t = self.session.execute(select(Tenant).where(Tenant.name == name)).scalar_one_or_none()
        if t is None:
            raise NotFound(f"tenant {name!r} does not exist")
        return t

    def get_or_create_tenant(self, name: str, *, actor: str = "system") -> Tenant:
        if not name or len(name) > 128:
            raise StoreError(f"tenant name {name!r} is not valid; use 1-128 characters")
        t = self.session.execute(select(Tenant).where(Tenant.name == name)).scalar_one_or_none()
        if t is None:
            t = Tenant(name=name, created_at=self.clock())
            self.session.add(t)
            self.session.flush()
            self.audit("tenant.create", actor=actor, tenant_id=t.id, subject=f"tenant:{t.id}")
        return t

    def thresholds(self, tenant_id: int) -> dict[str, float]:
        rows = self.session.execute(select(Threshold).where(Threshold.tenant_id == tenant_id)).scalars()
        return {r.name: r.value for r in rows}

    def set_threshold(self, tenant_id: int, name: str, value: float, *, actor: str) -> None:
        row = self.session.get(Threshold, (tenant_id, name))
        old = None if row is None else row.value
        if row is None:
            self.session.add(Threshold(tenant_id=tenant_id, name=name, value=value, updated_at=self.clock()))
        else:
            row.value, row.updated_at = value, self.clock()
        self.audit(
            "threshold.set",
            actor=actor,
            tenant_id=tenant_id,
            details={"name": name, "old": old, "new": value},
        )

    def set_operating_point(self, tenant_id: int, name: str | None, *, actor: str) -> None:
        """The threshold name this tenant decides at (None = the settings' default)."""
        t = self.session.get(Tenant, tenant_id)
        if t is None:
            raise NotFound(f"tenant id {tenant_id} does not exist")
        old, t.operating_point = t.operating_point, name
        self.audit("operating_point.set", actor=actor, tenant_id=tenant_id, details={"old": old, "new": name})

    # -- speakers, consent, privacy operations ----------------------------------------------------------
    def speaker(self, tenant_id: int, external_ref: str, *, lock: bool = False) -> Speaker | None:
        q = select(Speaker).where(Speaker.tenant_id == tenant_id, Speaker.external_ref == external_ref)
        if lock:
            q = q.with_for_update()
        return self.session.execute(q).scalar_one_or_none()

    def require_speaker(self, tenant_id: int, external_ref: str, *, lock: bool = False) -> Speaker:
        spk = self.speaker(tenant_id, external_ref, lock=lock)
        if spk is None:
            raise NotFound(f"speaker {external_ref!r} is not registered in this tenant")
        return spk

    def create_speaker(self, tenant_id: int, external_ref: str, *, actor: str) -> Speaker:
        if not external_ref or len(external_ref) > 256:
            raise StoreError(f"external reference {external_ref!r} is not valid; use 1-256 characters")
        if self.speaker(tenant_id, external_ref) is not None:
            raise AlreadyExists(f"speaker {external_ref!r} already exists in this tenant")
        now = self.clock()
        spk = Speaker(tenant_id=tenant_id, external_ref=external_ref, created_at=now, updated_at=now)
        self.session.add(spk)
        self.session.flush()
        self.audit("speaker.create", actor=actor, speaker=spk)
        return spk

    def record_consent(self, speaker: Speaker, *, method: str, text_version: str, actor: str) -> ConsentRecord:
        c = ConsentRecord(
            speaker_id=speaker.id,
            method=method,
            text_version=text_version,
            recorded_by=actor,
            given_at=self.clock(),
        )
        self.session.add(c)
        if speaker.status == SpeakerStatus.OPTED_OUT:
            speaker.status = SpeakerStatus.ACTIVE.value
        speaker.updated_at = self.clock()
        self.session.flush()
        self.audit("consent.record", actor=actor, speaker=speaker, details={"method": method, "text": text_version})
        return c

    def active_consent(self, speaker: Speaker) -> ConsentRecord | None:
        q = (
            select(ConsentRecord)
            .where(ConsentRecord.speaker_id == speaker.id, ConsentRecord.withdrawn_at.is_(None))
            .order_by(ConsentRecord.given_at.desc())
            .limit(1)
        )
        return self.session.execute(q).scalar_one_or_none()

    def opt_out(self, speaker: Speaker, *, actor: str) -> None:
        """Delete the speaker's biometric data, replay fingerprints and call records, withdraw consent; later
        verifications answer OPTED_OUT."""
        self.clear_enrollment(speaker)
        self.session.execute(delete(Lockout).where(Lockout.speaker_id == speaker.id))
        self.session.execute(delete(ReplayFingerprint).where(ReplayFingerprint.speaker_id == speaker.id))
        self._delete_calls(speaker.tenant_id, speaker.external_ref, speaker.id)
        now = self.clock()
        for c in self.session.execute(
            select(ConsentRecord).where(ConsentRecord.speaker_id == speaker.id, ConsentRecord.withdrawn_at.is_(None))
        ).scalars():
            c.withdrawn_at = now
        speaker.status, speaker.updated_at = SpeakerStatus.OPTED_OUT.value, now
        self.audit("speaker.opt_out", actor=actor, speaker=speaker)

    def erase(self, speaker: Speaker, *, actor: str) -> None:
        """Delete the speaker and every row that belongs to it, and the call records naming its reference (also
        those of calls made before it was registered); the audit keeps only the pseudonym."""
        self.audit("speaker.erase", actor=actor, speaker=speaker)
        self._delete_calls(speaker.tenant_id, speaker.external_ref, speaker.id)
        self.session.execute(delete(ReplayFingerprint).where(ReplayFingerprint.speaker_id == speaker.id))
        self.session.delete(speaker)  # ON DELETE CASCADE removes consents, utterances, voiceprint, lockout, attempts
        self.session.flush()

    def erase_unregistered(self, tenant_id: int, external_ref: str, *, actor: str, action: str = "erase") -> int:
        """Erasure or opt-out of a reference that is not registered: the call records naming it are deleted (a call
        may claim any reference); returns how many. Audited under the reference's pseudonym when there were any."""
        n = self._delete_calls(tenant_id, external_ref, None)
        if n:
            self.audit(
                f"reference.{action}",
                actor=actor,
                tenant_id=tenant_id,
                subject=self.pseudonym(tenant_id, external_ref),
                details={"calls": n},
            )
        return n

    def _delete_calls(self, tenant_id: int, external_ref: str, speaker_id: int | None) -> int:
        """Delete the ``calls`` rows that name ``external_ref`` or belong to ``speaker_id``."""
        where = CallRecord.speaker_ref == external_ref
        if speaker_id is not None:
            where = or_(where, CallRecord.speaker_id == speaker_id)
        result = self.session.execute(delete(CallRecord).where(CallRecord.tenant_id == tenant_id, where))
        return int(getattr(result, "rowcount", 0) or 0)

    def set_voice_disabled(self, speaker: Speaker, disabled: bool, *, actor: str) -> None:
        speaker.voice_disabled, speaker.updated_at = disabled, self.clock()
        if not disabled:
            self.session.execute(delete(Lockout).where(Lockout.speaker_id == speaker.id))
        self.audit("speaker.voice_disabled" if disabled else "speaker.voice_enabled", actor=actor, speaker=speaker)

    # -- enrolment utterances and voiceprints -------------------------------------------------------------
    def _speaker_vector(
        self, table: str, speaker: Speaker, row: EnrollmentUtterance | Voiceprint, *, wide: bool = False
    ) -> FloatArray:
        """Decrypt one of the speaker's rows; a row that fails authentication under a key we hold is corrupt (or
        was moved, or a label beside it was edited: see :mod:`voiceauth.store.aad`)."""
        key_id = row.key_id
        blob = row.embedding_wide if wide else row.embedding
        assert blob is not None
        try:
            if row.speaker_id != speaker.id:
                raise DataKeyError(f"row of speaker id {row.speaker_id} read for speaker id {speaker.id}")
            return self.keyring.decrypt_vector(key_id, blob, _row_aad(table, row, key_id, wide=wide))
        except DataKeyError as exc:
            if key_id not in self.keyring.ids:
                raise  # a missing data key is configuration, not this row
            raise VoiceprintUnreadable(
                f"a stored {table} row of speaker {speaker.external_ref!r} failed its integrity check ({exc}); "
                "re-enrol the speaker (an enrolment with replace=true)",
                speaker_id=speaker.id,
                table=table,
            ) from exc

    def enrollment_utterances(self, speaker: Speaker) -> list[StoredUtterance]:
        rows = self.session.execute(
            select(EnrollmentUtterance)
            .where(EnrollmentUtterance.speaker_id == speaker.id)
            .order_by(EnrollmentUtterance.id)
        ).scalars()
        return [
            StoredUtterance(
                r.id,
                self._speaker_vector("enrollment_utterances", speaker, r),
                r.net_speech_s,
                r.narrowband,
                self._wide_vector("enrollment_utterances", speaker, r),
                row_space(r.space),
            )
            for r in rows
        ]

    def _wide_vector(self, table: str, speaker: Speaker, row: EnrollmentUtterance | Voiceprint) -> FloatArray | None:
        return None if row.embedding_wide is None else self._speaker_vector(table, speaker, row, wide=True)

    def _seal(
        self,
        table: str,
        row: EnrollmentUtterance | Voiceprint,
        embedding: bytes,
        embedding_wide: bytes | None,
    ) -> None:
        """Encrypt both embeddings into ``row`` (its speaker, space and narrowband already set: they are bound into
        the ciphertexts) under the active key; one key id for the row."""
        _seal_row(self.keyring, table, row, embedding, embedding_wide)

    def add_enrollment_utterance(
        self,
        speaker: Speaker,
        embedding: FloatArray,
        quality: Quality,
        *,
        narrowband: bool,
        embedding_wide: FloatArray | None = None,
        space: str = RELEASED_SPACE,
    ) -> EnrollmentUtterance:
        """One accepted utterance: its telephone-band embedding (made in ``space``) and, for wideband audio, its
        full-band one."""
        row = EnrollmentUtterance(
            speaker_id=speaker.id,
            net_speech_s=quality.net_speech_s,
            snr_db=quality.snr_db,
            clipping_ratio=quality.clipping_ratio,
            level_dbfs=quality.level_dbfs,
            narrowband=narrowband,
            space=space,
            created_at=self.clock(),
        )
        self._seal("enrollment_utterances", row, _vec(embedding), _vec_or_none(embedding_wide))
        self.session.add(row)
        self.session.flush()
        return row

    def clear_enrollment(self, speaker: Speaker) -> None:
        self.session.execute(delete(EnrollmentUtterance).where(EnrollmentUtterance.speaker_id == speaker.id))
        self.session.execute(delete(Voiceprint).where(Voiceprint.speaker_id == speaker.id))

    def voiceprint(self, speaker: Speaker) -> StoredVoiceprint | None:
        vp = self.session.get(Voiceprint, speaker.id)
        if vp is None:
            return None
        emb = self._speaker_vector("voiceprints", speaker, vp)
        return StoredVoiceprint(
            emb,
            vp.net_speech_s,
            vp.n_utterances,
            vp.narrowband,
            vp.created_at,
            vp.last_used_at,
            vp.expires_at,
            self._wide_vector("voiceprints", speaker, vp),
            row_space(vp.space),
        )

    def save_voiceprint(
        self,
        speaker: Speaker,
        embedding: FloatArray,
        *,
        net_speech_s: float,
        n_utterances: int,
        narrowband: bool,
        retention: dt.timedelta,
        embedding_wide: FloatArray | None = None,
        space: str = RELEASED_SPACE,
    ) -> None:
        """Create or replace the voiceprint (``embedding`` made in ``space``); ``embedding_wide`` None stores no full
        band (any earlier one is gone)."""
        now = self.clock()
        vp = self.session.get(Voiceprint, speaker.id)
        if vp is None:
            vp = Voiceprint(speaker_id=speaker.id, created_at=now)
            self.session.add(vp)
        vp.net_speech_s, vp.n_utterances, vp.space = net_speech_s, n_utterances, space
        vp.narrowband, vp.updated_at, vp.expires_at = narrowband, now, now + retention
        self._seal("voiceprints", vp, _vec(embedding), _vec_or_none(embedding_wide))  # labels first: they are bound
        self.session.flush()

    def touch_voiceprint(self, speaker: Speaker, *, retention: dt.timedelta) -> None:
        vp = self.session.get(Voiceprint, speaker.id)
        if vp is not None:
            now = self.clock()
            vp.last_used_at, vp.expires_at = now, now + retention

    # -- lockout -------------------------------------------------------------------------------------------
    def lockout(self, speaker: Speaker) -> Lockout:
        row = self.session.get(Lockout, speaker.id, with_for_update=True)
        if row is None:
            row = Lockout(speaker_id=speaker.id, consecutive_failures=0, locked_until=None, updated_at=self.clock())
            self.session.add(row)
            self.session.flush()
        return row

    # -- replay fingerprints (anti-spoofing) ---------------------------------------------------------------
    def replay_history(
        self, speaker: Speaker, *, retention_s: float, keep: int = REPLAY_HISTORY_MAX
    ) -> list[tuple[dt.datetime, bytes]]:
        """The speaker's stored attempt fingerprints, oldest first. Rows older than ``retention_s`` are deleted, and
        so are all but the newest ``keep`` (the check's cost grows with them: about 0.5 ms each)."""
        cutoff = self.clock() - dt.timedelta(seconds=retention_s)
        self.session.execute(
            delete(ReplayFingerprint).where(
                ReplayFingerprint.speaker_id == speaker.id, ReplayFingerprint.created_at < cutoff
            )
        )
        rows = list(
            self.session.execute(
                select(ReplayFingerprint)
                .where(ReplayFingerprint.speaker_id == speaker.id)
                .order_by(ReplayFingerprint.created_at, ReplayFingerprint.id)
            ).scalars()
        )
        if len(rows) > keep:
            old, rows = rows[: len(rows) - keep], rows[len(rows) - keep :]
            self.session.execute(delete(ReplayFingerprint).where(ReplayFingerprint.id.in_([r.id for r in old])))
        return [(r.created_at, r.fingerprint) for r in rows]

    def add_replay_fingerprint(self, speaker: Speaker, fingerprint: bytes) -> None:
        """Store one attempt's fingerprint (``replay.Fingerprint.to_bytes()``); never audio or embeddings."""
        self.session.add(ReplayFingerprint(speaker_id=speaker.id, fingerprint=fingerprint, created_at=self.clock()))
        self.session.flush()

    # -- watchlist -----------------------------------------------------------------------------------------
    def add_watchlist_entry(
        self, tenant_id: int, label: str, embedding: FloatArray, *, actor: str, space: str = RELEASED_SPACE
    ) -> int:
        row = WatchlistEntry(tenant_id=tenant_id, label=label, space=space, created_by=actor, created_at=self.clock())
        row.key_id, row.embedding = self.keyring.encrypt_bound(_vec(embedding), lambda k: _watch_aad(row, k))
        self.session.add(row)
        self.session.flush()
        self.audit("watchlist.add", actor=actor, tenant_id=tenant_id, details={"entry": row.id})
        return row.id

    def remove_watchlist_entry(self, tenant_id: int, entry_id: int, *, actor: str) -> None:
        row = self.session.get(WatchlistEntry, entry_id)
        if row is None or row.tenant_id != tenant_id:
            raise NotFound(f"watchlist entry {entry_id} does not exist in this tenant")
        self.session.delete(row)
        self.audit("watchlist.remove", actor=actor, tenant_id=tenant_id, details={"entry": entry_id})

    def watchlist(self, tenant_id: int, *, space: str = RELEASED_SPACE) -> list[tuple[int, str, FloatArray]]:
        """The tenant's entries made in ``space``; entries of another network cannot be scored and are skipped
        (with a warning: re-add them from their audio)."""
        rows = list(
            self.session.execute(
                select(WatchlistEntry).where(WatchlistEntry.tenant_id == tenant_id).order_by(WatchlistEntry.id)
            ).scalars()
        )
        usable = [r for r in rows if row_space(r.space) == space]
        if len(usable) < len(rows):
            log.warning(
                "%d watchlist entries of tenant %d were made by another embedding network than %s and are not "
                "searched; re-add them from their audio",
                len(rows) - len(usable),
                tenant_id,
                space,
            )
        out: list[tuple[int, str, FloatArray]] = []
        for r in usable:
            try:
                out.append((r.id, r.label, self.keyring.decrypt_vector(r.key_id, r.embedding, _watch_aad(r, r.key_id))))
            except DataKeyError as exc:
                if r.key_id not in self.keyring.ids:
                    raise  # a missing data key is configuration, not this row
                # an entry that fails its integrity check cannot be trusted; the others are still searched
                log.error("watchlist entry %d of tenant %d failed its integrity check; re-add it", r.id, tenant_id)
                self.audit(
                    "watchlist.unreadable",
                    actor="system",
                    tenant_id=tenant_id,
                    outcome="error",
                    details={"entry": r.id, "error": str(exc)[:200]},
                )
        return out


class Store:
    """Engine, keyring, clock and pseudonym salt of one store; hands out transactions."""

    def __init__(self, engine: Engine, keyring: Keyring, *, clock: Clock = utcnow, apply_migrations: bool = True):
        self.engine = engine
        self.keyring = keyring
        self.clock = clock
        if apply_migrations:
            migrate(engine, keyring)
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._salt = self._load_salt()

    def _load_salt(self) -> bytes:
        for _ in range(2):
            try:
                with self._sessions.begin() as s:
                    row = s.get(StoreMeta, "pseudonym_salt")
                    if row is None:
                        row = StoreMeta(key="pseudonym_salt", value=secrets.token_hex(32))
                        s.add(row)
                    return bytes.fromhex(row.value)
            except IntegrityError:  # another worker created it first
                continue
        raise RuntimeError("could not create the store's pseudonym salt")

    @contextmanager
    def transaction(self) -> Iterator[StoreTx]:
        """One unit of work: commits on normal exit, rolls back on any exception.

        A unit of work that met a corrupt biometric row (:class:`VoiceprintUnreadable`) is rolled back and the
        finding is audited in a transaction of its own (``voiceprint.unreadable``), then the error propagates.
        """
        try:
            with self._sessions.begin() as session:
                yield StoreTx(session, self.keyring, self.clock, self._salt)
        except VoiceprintUnreadable as exc:
            self._audit_unreadable(exc)
            raise

    def _audit_unreadable(self, exc: VoiceprintUnreadable) -> None:
        try:
            with self._sessions.begin() as session:
                tx = StoreTx(session, self.keyring, self.clock, self._salt)
                spk = session.get(Speaker, exc.speaker_id)
                if spk is not None:
                    tx.audit(
                        "voiceprint.unreadable",
                        actor="system",
                        speaker=spk,
                        outcome="error",
                        details={"table": exc.table},
                    )
        except Exception:  # noqa: BLE001 - the original error is what the caller must see
            log.exception("could not audit an unreadable row of speaker id %d", exc.speaker_id)

    def verify_audit_chain(self) -> _audit.ChainReport:
        with self._sessions() as session:
            return _audit.verify_chain(session)

    def reencrypt(self, *, batch: int = 200, actor: str = "system") -> int:
        """Re-encrypt every row not under the active key, ``batch`` rows per transaction; returns the count."""
        total = 0
        for model in (EnrollmentUtterance, Voiceprint):
            table = str(model.__tablename__)
            while True:
                with self.transaction() as tx:
                    rows: list[Any] = list(
                        tx.session.execute(
                            select(model).where(model.key_id != self.keyring.active_id).limit(batch).with_for_update()
                        )
                        .scalars()
                        .all()
                    )
                    for r in rows:
                        plain = self.keyring.decrypt(r.key_id, r.embedding, _row_aad(table, r, r.key_id))
                        wide = None
                        if r.embedding_wide is not None:
                            wide = self.keyring.decrypt(
                                r.key_id, r.embedding_wide, _row_aad(table, r, r.key_id, wide=True)
                            )
                        _seal_row(self.keyring, table, r, plain, wide)
                    if rows:
                        tx.audit("data_key.reencrypt", actor=actor, details={"table": table, "rows": len(rows)})
                total += len(rows)
                if len(rows) < batch:
                    break
        while True:
            with self.transaction() as tx:
                entries = list(
                    tx.session.execute(
                        select(WatchlistEntry)
                        .where(WatchlistEntry.key_id != self.keyring.active_id)
                        .limit(batch)
                        .with_for_update()
                    ).scalars()
                )
                for w in entries:
                    plain = self.keyring.decrypt(w.key_id, w.embedding, _watch_aad(w, w.key_id))
                    w.key_id, w.embedding = self.keyring.encrypt_bound(plain, functools.partial(_watch_aad, w))
                if entries:
                    tx.audit(
                        "data_key.reencrypt", actor=actor, details={"table": "watchlist_entries", "rows": len(entries)}
                    )
            total += len(entries)
            if len(entries) < batch:
                break
        total += self._reencrypt_api_key_secrets(actor=actor)
        return total

    def _reencrypt_api_key_secrets(self, *, actor: str) -> int:
        """API keys' AudioHook secrets and Twilio auth tokens (few rows: one transaction); AAD as ``store.keys``."""
        n = 0
        with self.transaction() as tx:
            rows = list(tx.session.execute(select(ApiKey).with_for_update()).scalars())
            for r in rows:
                changed = False
                for col, kid_col in API_KEY_SECRETS.items():
                    kid, blob = getattr(r, kid_col), getattr(r, col)
                    if kid is None or blob is None or kid == self.keyring.active_id:
                        continue
                    aad_of = functools.partial(_api_aad, col, r.id, r.tenant_id)
                    new_kid, new_blob = self.keyring.encrypt_bound(self.keyring.decrypt(kid, blob, aad_of(kid)), aad_of)
                    setattr(r, kid_col, new_kid)
                    setattr(r, col, new_blob)
                    changed = True
                n += changed
            if n:
                tx.audit("data_key.reencrypt", actor=actor, details={"table": "api_keys", "rows": n})
        return n

    def purge_expired(self, *, actor: str = "system") -> int:
        """Delete voiceprints (and their utterances) past their expiry; their speakers become EXPIRED."""
        with self.transaction() as tx:
            now = tx.clock()
            ids = tx.session.execute(select(Voiceprint.speaker_id).where(Voiceprint.expires_at <= now)).scalars().all()
            for sid in ids:
                spk = tx.session.get(Speaker, sid)
                if spk is None:
                    continue
                tx.clear_enrollment(spk)
                spk.status, spk.updated_at = SpeakerStatus.EXPIRED.value, now
                tx.audit("voiceprint.purge_expired", actor=actor, speaker=spk)
            return len(ids)

    def count_rows(self, model: type[Any], **where: Any) -> int:
        """Row count of a model (filters by equality); for KPIs and tests."""
        with self._sessions() as s:
            q = select(func.count()).select_from(model)
            for k, v in where.items():
                q = q.where(getattr(model, k) == v)
            return int(s.execute(q).scalar_one())

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(settings: Settings, *, clock: Clock = utcnow, keyring: Keyring | None = None) -> Store:
    """The configured store: database from settings (SQLite in the data dir by default), migrated to head."""
    engine = create_db_engine(
        database_url(settings),
        connect_retry_s=settings.database_connect_retry_s,
        pool_size=settings.database_pool_size,
    )
    return Store(engine, keyring or load_keyring(settings), clock=clock)
