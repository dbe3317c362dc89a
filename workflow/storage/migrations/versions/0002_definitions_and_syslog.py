"""Create the tables of stored definitions and of log records.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:04:37
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The types as they were at this revision; a migration never imports today's models.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    """Create ``wf_definition`` and ``wf_syslog`` with their indexes."""
    op.create_table(
        "wf_definition",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created", Timestamp, nullable=False),
        sa.Column("updated", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wf_definition")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_wf_definition_name")),
    )

    op.create_table(
        "wf_syslog",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created", Timestamp, nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("logger_name", sa.String(255), nullable=False),
        sa.Column("module", sa.String(255), nullable=False),
        sa.Column("func_name", sa.String(255), nullable=False),
        sa.Column("message", LongText, nullable=False),
        sa.Column("workflow_uuid", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wf_syslog")),
    )
    op.create_index(op.f("ix_wf_syslog_created"), "wf_syslog", ["created"])
    op.create_index(op.f("ix_wf_syslog_workflow_uuid"), "wf_syslog", ["workflow_uuid"])


def downgrade() -> None:
    """Drop the two tables, with the definitions and log records stored in them."""
    op.drop_table("wf_syslog")
    op.drop_table("wf_definition")
