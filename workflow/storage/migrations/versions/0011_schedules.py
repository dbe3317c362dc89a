"""Create the tables of cron schedules and of the times they fired.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 01:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The type as it was at this revision; a migration never imports today's models.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Create ``wf_schedule`` and ``wf_schedule_fire``; no schedule exists so far."""
    op.create_table(
        "wf_schedule",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("cron", sa.String(255), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("flow", sa.String(255), nullable=False),
        sa.Column("tokens", sa.JSON(), nullable=False),
        sa.Column("overlap", sa.String(16), nullable=False),
        sa.Column("catch_up", sa.String(16), nullable=False),
        sa.Column("catch_up_window", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("next_fire_at", Timestamp, nullable=False),
        sa.Column("created", Timestamp, nullable=False),
        sa.Column("updated", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wf_schedule")),
        sa.UniqueConstraint("name", name=op.f("uq_wf_schedule_name")),
    )
    op.create_index("ix_wf_schedule_paused_next_fire_at", "wf_schedule", ["paused", "next_fire_at"])
    op.create_table(
        "wf_schedule_fire",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("fire_time", Timestamp, nullable=False),
        sa.Column("run_uuid", sa.String(36), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", sa.String(1000), nullable=True),
        sa.Column("created", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["wf_schedule.id"],
            name=op.f("fk_wf_schedule_fire_schedule_id_wf_schedule"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wf_schedule_fire")),
        sa.UniqueConstraint("schedule_id", "fire_time", name="uq_wf_schedule_fire_schedule_time"),
    )
    op.create_index("ix_wf_schedule_fire_outcome", "wf_schedule_fire", ["outcome"])


def downgrade() -> None:
    """Drop the two tables: the runs they started stay."""
    op.drop_table("wf_schedule_fire")
    op.drop_table("wf_schedule")
