"""Create the tables of what runs wait for: waits, their answers, and messages.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 21:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The type as it was at this revision; a migration never imports today's models.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Create ``wf_wait``, ``wf_answer`` and ``wf_message``; no run stored so far waits."""
    op.create_table(
        "wf_wait",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("workflow_uuid", sa.String(36), nullable=False),
        sa.Column("token_position", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("due", Timestamp, nullable=True),
        sa.Column("topic", sa.String(255), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("approvals", sa.Integer(), nullable=False),
        sa.Column("rejections", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created", Timestamp, nullable=False),
        sa.Column("decided", Timestamp, nullable=True),
        sa.ForeignKeyConstraint(
            ["workflow_uuid"],
            ["wf_workflow.uuid"],
            name=op.f("fk_wf_wait_workflow_uuid_wf_workflow"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wf_wait")),
    )
    op.create_index(op.f("ix_wf_wait_workflow_uuid"), "wf_wait", ["workflow_uuid"])
    op.create_index("ix_wf_wait_phase_due", "wf_wait", ["phase", "due"])
    op.create_table(
        "wf_answer",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("wait_id", sa.String(36), nullable=False),
        sa.Column("by", sa.String(255), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("key", sa.String(255), nullable=True),
        sa.Column("created", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["wait_id"],
            ["wf_wait.id"],
            name=op.f("fk_wf_answer_wait_id_wf_wait"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wf_answer")),
        sa.UniqueConstraint("wait_id", "by", name="uq_wf_answer_wait_id_by"),
        sa.UniqueConstraint("wait_id", "key", name="uq_wf_answer_wait_id_key"),
    )
    op.create_table(
        "wf_message",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workflow_uuid", sa.String(36), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("wait_id", sa.String(36), nullable=True),
        sa.Column("created", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_uuid"],
            ["wf_workflow.uuid"],
            name=op.f("fk_wf_message_workflow_uuid_wf_workflow"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wf_message")),
        sa.UniqueConstraint("workflow_uuid", "topic", "key", name="uq_wf_message_run_topic_key"),
    )
    op.create_index("ix_wf_message_run_topic", "wf_message", ["workflow_uuid", "topic", "wait_id"])


def downgrade() -> None:
    """Drop the three tables: the runs stay, without what they waited for."""
    op.drop_table("wf_message")
    op.drop_table("wf_answer")
    op.drop_table("wf_wait")
