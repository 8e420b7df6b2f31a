"""anti-spoofing: replay fingerprints, spoof score/reason on attempts, AudioHook secret on API keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 21:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "replay_fingerprints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("speaker_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["speaker_id"],
            ["speakers.id"],
            name=op.f("fk_replay_fingerprints_speaker_id_speakers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replay_fingerprints")),
    )
    with op.batch_alter_table("replay_fingerprints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_replay_fingerprints_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_replay_fingerprints_speaker_id"), ["speaker_id"], unique=False)
    with op.batch_alter_table("verification_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("spoof_score", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("spoof_reason", sa.String(length=32), nullable=True))
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audiohook_key_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("audiohook_secret", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("audiohook_secret")
        batch_op.drop_column("audiohook_key_id")
    with op.batch_alter_table("verification_attempts", schema=None) as batch_op:
        batch_op.drop_column("spoof_reason")
        batch_op.drop_column("spoof_score")
    with op.batch_alter_table("replay_fingerprints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_replay_fingerprints_speaker_id"))
        batch_op.drop_index(batch_op.f("ix_replay_fingerprints_created_at"))
    op.drop_table("replay_fingerprints")
