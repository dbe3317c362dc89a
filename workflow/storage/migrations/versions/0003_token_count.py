"""Record how many tokens a run was given, so that an incomplete input is recognised.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 23:40:00
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
    """Add ``wf_workflow.token_count`` and fill it in for the runs stored so far.

    A run that has tokens, or that left ``NEW`` (status 0), had its input
    stored whole (one transaction stored every token): it gets its count. A
    ``NEW`` run without tokens keeps ``NULL``: its input was never stored.
    """
    with op.batch_alter_table("wf_workflow") as batch:
        batch.add_column(sa.Column("token_count", sa.Integer(), nullable=True))
    workflow = sa.table(
        "wf_workflow",
        sa.column("uuid", sa.String),
        sa.column("status", sa.Integer),
        sa.column("token_count", sa.Integer),
    )
    token = sa.table("wf_token", sa.column("workflow_uuid", sa.String))
    count = (
        sa.select(sa.func.count()).where(token.c.workflow_uuid == workflow.c.uuid).scalar_subquery()
    )
    op.execute(
        workflow.update().where(sa.or_(workflow.c.status != 0, count > 0)).values(token_count=count)
    )


def downgrade() -> None:
    """Drop ``wf_workflow.token_count``."""
    with op.batch_alter_table("wf_workflow") as batch:
        batch.drop_column("token_count")
