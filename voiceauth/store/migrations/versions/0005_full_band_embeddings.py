"""full-band embeddings next to the telephone-band ones (enrollment_utterances, voiceprints); NULL for old rows

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 16:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("enrollment_utterances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("embedding_wide", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("voiceprints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("embedding_wide", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("voiceprints", schema=None) as batch_op:
        batch_op.drop_column("embedding_wide")
    with op.batch_alter_table("enrollment_utterances", schema=None) as batch_op:
        batch_op.drop_column("embedding_wide")
