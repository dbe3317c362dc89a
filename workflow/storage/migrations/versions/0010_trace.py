"""Create the trace: one row per task a token ran in a stored run.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The type as it was at this revision; a migration never imports today's models.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Create ``wf_trace``; the runs stored so far have no trace."""
    op.create_table(
        "wf_trace",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workflow_uuid", sa.String(36), nullable=False),
        sa.Column("token_position", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(255), nullable=False),
        sa.Column("callback_pos", sa.String(255), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("started", Timestamp, nullable=False),
        sa.Column("duration", sa.Double(), nullable=False),
        sa.Column("worker", sa.String(255), nullable=False),
        sa.Column("error_type", sa.String(255), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wf_trace")),
    )
    op.create_index("ix_wf_trace_run_token", "wf_trace", ["workflow_uuid", "token_position", "id"])


def downgrade() -> None:
    """Drop the trace: the runs stay, without it."""
    op.drop_table("wf_trace")
