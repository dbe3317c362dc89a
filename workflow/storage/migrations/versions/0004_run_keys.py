"""Create the table of run keys: at most one active run per name and key.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 04:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The type as it was at this revision; a migration never imports today's models.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Create ``wf_run_key``, keyed by ``(scope, key)``; the runs stored so far hold no key."""
    op.create_table(
        "wf_run_key",
        sa.Column("scope", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("workflow_uuid", sa.String(36), nullable=False),
        sa.Column("created", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_uuid"],
            ["wf_workflow.uuid"],
            name=op.f("fk_wf_run_key_workflow_uuid_wf_workflow"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_wf_run_key")),
    )
    op.create_index(op.f("ix_wf_run_key_workflow_uuid"), "wf_run_key", ["workflow_uuid"])


def downgrade() -> None:
    """Drop ``wf_run_key``: the runs stay, without their keys."""
    op.drop_table("wf_run_key")
