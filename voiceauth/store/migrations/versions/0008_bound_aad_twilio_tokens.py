"""AES-GCM associated data binds every label beside a ciphertext (re-encrypts existing rows); Twilio auth tokens on
API keys

Every stored ciphertext (enrolment utterances, voiceprints, watchlist entries, API keys' AudioHook secrets) is
decrypted under its old associated data (table and owner only) and encrypted again, under the active data key,
with associated data naming its labels too (speaker or tenant, data key id, embedding space, band, narrowband,
watchlist label; see ``voiceauth.store.aad``). Both formats are frozen here, so later changes to the store cannot
change what this revision did. A row that fails authentication under its old associated data (already corrupt)
is left as it is: it fails its integrity check when read, as it did before.

The data keys come from ``voiceauth.store.db.migrate(engine, keyring=...)`` (the store passes its keyring); a
database with encrypted rows cannot be upgraded without them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 18:00:00
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("voiceauth.store.migrations.0008")


def _old(table: str, owner: int, col: str = "embedding") -> bytes:
    """The associated data of revisions 0001-0007."""
    if col == "embedding":
        return f"voiceauth:{table}:{owner}".encode()
    return f"voiceauth:{table}.{col}:{owner}".encode()


def _new(fields: dict[str, Any]) -> bytes:
    """The associated data from this revision on (``voiceauth.store.aad``, format 2)."""
    return json.dumps({"v": 2, **fields}, sort_keys=True, separators=(",", ":")).encode()


def _keyring() -> Any:
    config = op.get_context().config
    return None if config is None else config.attributes.get("keyring")


def _need_keyring(keyring: Any, what: str) -> Any:
    if keyring is None:
        from voiceauth.errors import ConfigError

        raise ConfigError(
            f"migration 0008 re-encrypts {what} and needs the data keys: upgrade through voiceauth (the store "
            "passes its keyring to voiceauth.store.db.migrate), not with alembic alone"
        )
    return keyring


def _reseal(keyring: Any, kid: str, blob: bytes, old: bytes, new_of: Any, where: str) -> tuple[str, bytes] | None:
    """Decrypt under the old AAD, encrypt under the new one (active key); None when the row is already unreadable."""
    from voiceauth.errors import DataKeyError

    if kid not in keyring.ids:
        raise DataKeyError(
            f"{where} is encrypted with data key {kid!r}, which is not configured (keys {list(keyring.ids)}); "
            "configure every data key before upgrading"
        )
    try:
        plain = keyring.decrypt(kid, blob, old)
    except DataKeyError:
        log.warning("%s already fails its integrity check; left as it is (re-enrol or re-add it)", where)
        return None
    sealed: tuple[str, bytes] = keyring.encrypt_bound(plain, new_of)
    return sealed


def _speaker_tables(conn: sa.Connection, meta: sa.MetaData) -> None:
    keyring = None
    for table in ("enrollment_utterances", "voiceprints"):
        t = meta.tables[table]
        pk = t.c.id if "id" in t.c else t.c.speaker_id
        rows = conn.execute(
            sa.select(pk, t.c.speaker_id, t.c.key_id, t.c.embedding, t.c.embedding_wide, t.c.space, t.c.narrowband)
        ).all()
        for row_id, sid, kid, blob, wide, space, narrowband in rows:
            keyring = _need_keyring(keyring or _keyring(), f"the rows of {table}")
            where = f"{table} row {row_id} (speaker id {sid})"

            def fields(
                k: str, col: str, table: str = table, sid: int = sid, space: str | None = space, nb: bool = narrowband
            ) -> bytes:
                return _new(
                    {"table": table, "col": col, "speaker": sid, "key": k, "space": space, "narrowband": bool(nb)}
                )

            sealed = _reseal(keyring, kid, blob, _old(table, sid), lambda k, f=fields: f(k, "embedding"), where)
            if sealed is None:
                continue
            values: dict[str, Any] = {"key_id": sealed[0], "embedding": sealed[1]}
            if wide is not None:
                wide_sealed = _reseal(
                    keyring,
                    kid,
                    wide,
                    _old(table, sid, "embedding_wide"),
                    lambda k, f=fields: f(k, "embedding_wide"),
                    where + " (full band)",
                )
                if wide_sealed is None:
                    continue  # the row keeps its old key id and ciphertexts: unreadable, as before
                values["embedding_wide"] = wide_sealed[1]
            conn.execute(sa.update(t).where(pk == row_id).values(**values))


def _watchlist(conn: sa.Connection, meta: sa.MetaData) -> None:
    t = meta.tables["watchlist_entries"]
    keyring = None
    for row_id, tenant, kid, blob, space, label in conn.execute(
        sa.select(t.c.id, t.c.tenant_id, t.c.key_id, t.c.embedding, t.c.space, t.c.label)
    ).all():
        keyring = _need_keyring(keyring or _keyring(), "the watchlist")

        def fields(k: str, tenant: int = tenant, space: str | None = space, label: str = label) -> bytes:
            base = {"table": "watchlist_entries", "col": "embedding", "tenant": tenant, "key": k, "space": space}
            return _new({**base, "label": label})

        sealed = _reseal(
            keyring, kid, blob, _old("watchlist_entries", tenant), fields, f"watchlist entry {row_id} (tenant {tenant})"
        )
        if sealed is not None:
            conn.execute(sa.update(t).where(t.c.id == row_id).values(key_id=sealed[0], embedding=sealed[1]))


def _audiohook_secrets(conn: sa.Connection, meta: sa.MetaData) -> None:
    t = meta.tables["api_keys"]
    keyring = None
    rows = conn.execute(
        sa.select(t.c.id, t.c.tenant_id, t.c.audiohook_key_id, t.c.audiohook_secret).where(
            t.c.audiohook_secret.is_not(None)
        )
    ).all()
    for row_id, tenant, kid, blob in rows:
        if kid is None:
            continue
        keyring = _need_keyring(keyring or _keyring(), "API keys' AudioHook secrets")

        def fields(k: str, row_id: int = row_id, tenant: int = tenant) -> bytes:
            return _new({"table": "api_keys", "col": "audiohook_secret", "row": row_id, "tenant": tenant, "key": k})

        old = f"voiceauth:api_keys.audiohook_secret:{row_id}".encode()
        sealed = _reseal(keyring, kid, blob, old, fields, f"the AudioHook secret of API key {row_id}")
        if sealed is not None:
            conn.execute(
                sa.update(t).where(t.c.id == row_id).values(audiohook_key_id=sealed[0], audiohook_secret=sealed[1])
            )


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("twilio_key_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("twilio_auth_token", sa.LargeBinary(), nullable=True))
    conn = op.get_bind()
    meta = sa.MetaData()
    meta.reflect(conn, only=["enrollment_utterances", "voiceprints", "watchlist_entries", "api_keys"])
    _speaker_tables(conn, meta)
    _watchlist(conn, meta)
    _audiohook_secrets(conn, meta)


def downgrade() -> None:
    # the ciphertexts stay under the new associated data (not readable by 0007's code): downgrade only a database
    # without biometric rows, or restore a backup
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("twilio_auth_token")
        batch_op.drop_column("twilio_key_id")
