"""Rows as an older schema revision's code wrote them, for the migration tests: written below the model layer."""

from __future__ import annotations

import datetime as dt

import numpy as np
from alembic import command
from sqlalchemy import Engine, MetaData, insert

from voiceauth.store.crypto import Keyring
from voiceauth.store.db import _alembic_config


def enrolled_at_revision(
    engine: Engine, keyring: Keyring, revision: str, voiceprint: np.ndarray, utterance: np.ndarray | None = None
) -> set[str]:
    """Migrate a fresh database to ``revision``; add tenant ``acme`` with speaker ``alice``, her voiceprint and, if
    given, one enrolment utterance (telephone band, encrypted as the store does). Returns the voiceprints table's
    columns at that revision."""
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    now = dt.datetime(2026, 11, 1, 12, 0)  # naive UTC
    with engine.begin() as conn:
        meta = MetaData()
        meta.reflect(conn)
        tables = meta.tables
        tenant = conn.execute(insert(tables["tenants"]).values(name="acme", created_at=now)).inserted_primary_key[0]
        sid = conn.execute(
            insert(tables["speakers"]).values(
                tenant_id=tenant,
                external_ref="alice",
                status="active",
                voice_disabled=False,
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]
        key_id, vp_blob = keyring.encrypt_vector(voiceprint, f"voiceauth:voiceprints:{sid}".encode())
        if utterance is not None:
            _, utt_blob = keyring.encrypt_vector(utterance, f"voiceauth:enrollment_utterances:{sid}".encode())
            conn.execute(
                insert(tables["enrollment_utterances"]).values(
                    speaker_id=sid,
                    key_id=key_id,
                    embedding=utt_blob,
                    net_speech_s=9.0,
                    snr_db=30.0,
                    clipping_ratio=0.0,
                    level_dbfs=-20.0,
                    narrowband=True,
                    created_at=now,
                )
            )
        conn.execute(
            insert(tables["voiceprints"]).values(
                speaker_id=sid,
                key_id=key_id,
                embedding=vp_blob,
                net_speech_s=9.0,
                n_utterances=1,
                narrowband=True,
                created_at=now,
                updated_at=now,
                expires_at=now + dt.timedelta(days=3650),
            )
        )
        return set(tables["voiceprints"].c.keys())
