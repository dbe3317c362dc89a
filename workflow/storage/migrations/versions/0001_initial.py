"""Create the workflow, token and transition tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 17:20:21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The types as they were at this revision; a migration never imports today's models.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Create the workflow, token and transition tables with their indexes."""
    op.create_table(
        "wf_workflow",
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("token_pos", sa.Integer(), nullable=False),
        sa.Column("callback_pos", sa.JSON(), nullable=False),
        sa.Column("extra_data", sa.JSON(), nullable=False),
        sa.Column("definition_name", sa.String(255), nullable=True),
        sa.Column("definition_version", sa.Integer(), nullable=True),
        sa.Column("lock_owner", sa.String(255), nullable=True),
        sa.Column("lock_expires", Timestamp, nullable=True),
        sa.Column("created", Timestamp, nullable=False),
        sa.Column("modified", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_wf_workflow")),
    )
    op.create_index(op.f("ix_wf_workflow_name"), "wf_workflow", ["name"])
    op.create_index(op.f("ix_wf_workflow_status"), "wf_workflow", ["status"])

    op.create_table(
        "wf_token",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workflow_uuid", sa.String(36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("extra_data", sa.JSON(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("callback_pos", sa.JSON(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created", Timestamp, nullable=False),
        sa.Column("modified", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wf_token")),
        sa.UniqueConstraint("workflow_uuid", "position", name=op.f("uq_wf_token_workflow_uuid")),
        sa.ForeignKeyConstraint(
            ["workflow_uuid"],
            ["wf_workflow.uuid"],
            name=op.f("fk_wf_token_workflow_uuid_wf_workflow"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(op.f("ix_wf_token_workflow_uuid"), "wf_token", ["workflow_uuid"])
    op.create_index(op.f("ix_wf_token_status"), "wf_token", ["status"])

    op.create_table(
        "wf_transition",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workflow_uuid", sa.String(36), nullable=False),
        sa.Column("token_position", sa.Integer(), nullable=True),
        sa.Column("from_status", sa.Integer(), nullable=True),
        sa.Column("to_status", sa.Integer(), nullable=False),
        sa.Column("callback_pos", sa.JSON(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wf_transition")),
        sa.ForeignKeyConstraint(
            ["workflow_uuid"],
            ["wf_workflow.uuid"],
            name=op.f("fk_wf_transition_workflow_uuid_wf_workflow"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        op.f("ix_wf_transition_workflow_token"),
        "wf_transition",
        ["workflow_uuid", "token_position"],
    )


def downgrade() -> None:
    """Drop the three tables, with everything stored in them."""
    op.drop_table("wf_transition")
    op.drop_table("wf_token")
    op.drop_table("wf_workflow")
