"""IVR call outcomes (calls) and calling-number (ANI) -> speaker mappings (caller_numbers)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 13:09:17.121373
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "caller_numbers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("speaker_id", sa.Integer(), nullable=False),
        sa.Column("hash_key_id", sa.String(length=32), nullable=False),
        sa.Column("number_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["speaker_id"], ["speakers.id"], name=op.f("fk_caller_numbers_speaker_id_speakers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_caller_numbers_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caller_numbers")),
        sa.UniqueConstraint("tenant_id", "number_hash", name="uq_caller_numbers_tenant_hash"),
    )
    with op.batch_alter_table("caller_numbers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_caller_numbers_speaker_id"), ["speaker_id"], unique=False)

    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=128), nullable=False),
        sa.Column("protocol", sa.String(length=16), nullable=False),
        sa.Column("speaker_ref", sa.String(length=256), nullable=False),
        sa.Column("speaker_id", sa.Integer(), nullable=True),
        sa.Column("decision", sa.String(length=32), nullable=True),
        sa.Column("speech_seconds", sa.Float(), nullable=False),
        sa.Column("decided_at_ms", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("flow_outcome", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["speaker_id"], ["speakers.id"], name=op.f("fk_calls_speaker_id_speakers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_calls_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("tenant_id", "call_id", name="uq_calls_tenant_call"),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calls_speaker_id"), ["speaker_id"], unique=False)
        batch_op.create_index(
            "ix_calls_tenant_speaker_started", ["tenant_id", "speaker_ref", "started_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_tenant_speaker_started")
        batch_op.drop_index(batch_op.f("ix_calls_speaker_id"))

    op.drop_table("calls")
    with op.batch_alter_table("caller_numbers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_caller_numbers_speaker_id"))

    op.drop_table("caller_numbers")
