"""Record who started a fire's run when: a worker that died starting it is taken over.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 04:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The type as it was at this revision; a migration never imports today's models.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Add ``wf_schedule_fire.claimed`` and ``attempts``: no fire stored so far is claimed."""
    with op.batch_alter_table("wf_schedule_fire") as batch:
        batch.add_column(sa.Column("claimed", Timestamp, nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("wf_schedule_fire") as batch:
        batch.alter_column("attempts", server_default=None)
    op.create_index("ix_wf_schedule_fire_claimed", "wf_schedule_fire", ["claimed"])


def downgrade() -> None:
    """Drop the two columns and their index."""
    op.drop_index("ix_wf_schedule_fire_claimed", table_name="wf_schedule_fire")
    with op.batch_alter_table("wf_schedule_fire") as batch:
        batch.drop_column("attempts")
        batch.drop_column("claimed")
