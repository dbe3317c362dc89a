"""Create the work queue: queued runs (their join counters) and work items.

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-06 01:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0008"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The type as it was at this revision; a migration never imports today's models.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Create ``wf_queued_run`` and ``wf_work``; no run stored so far is queued."""
    op.create_table(
        "wf_queued_run",
        sa.Column("workflow_uuid", sa.String(36), nullable=False),
        sa.Column("queue", sa.String(255), nullable=False),
        sa.Column("items_left", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("halts", sa.Integer(), nullable=False),
        sa.Column("created", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_uuid"],
            ["wf_workflow.uuid"],
            name=op.f("fk_wf_queued_run_workflow_uuid_wf_workflow"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workflow_uuid", name=op.f("pk_wf_queued_run")),
    )
    op.create_table(
        "wf_work",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workflow_uuid", sa.String(36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("lease_until", Timestamp, nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("created", Timestamp, nullable=False),
        sa.Column("modified", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_uuid"],
            ["wf_workflow.uuid"],
            name=op.f("fk_wf_work_workflow_uuid_wf_workflow"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wf_work")),
        sa.UniqueConstraint("workflow_uuid", "position", name="uq_wf_work_workflow_uuid_position"),
    )
    op.create_index("ix_wf_work_queue_state", "wf_work", ["queue", "state", "id"])
    op.create_index("ix_wf_work_state_lease", "wf_work", ["state", "lease_until"])


def downgrade() -> None:
    """Drop the work queue's tables (queued runs stay stored, as runs without workers)."""
    op.drop_index("ix_wf_work_state_lease", table_name="wf_work")
    op.drop_index("ix_wf_work_queue_state", table_name="wf_work")
    op.drop_table("wf_work")
    op.drop_table("wf_queued_run")
