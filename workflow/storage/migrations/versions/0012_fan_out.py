"""Parallel steps on a work queue: branch items and the join counter of the item that forked.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 04:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``wf_work.parent_item``, ``fork``, ``branch``, ``children_left``; ``next_position``."""
    with op.batch_alter_table("wf_work") as batch:
        batch.add_column(sa.Column("parent_item", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("fork", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("branch", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("children_left", sa.Integer(), nullable=True))
        batch.create_index("ix_wf_work_parent", ["parent_item", "fork", "branch"])
    with op.batch_alter_table("wf_queued_run") as batch:
        batch.add_column(sa.Column("next_position", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Drop the fan-out columns."""
    with op.batch_alter_table("wf_queued_run") as batch:
        batch.drop_column("next_position")
    with op.batch_alter_table("wf_work") as batch:
        batch.drop_index("ix_wf_work_parent")
        batch.drop_column("children_left")
        batch.drop_column("branch")
        batch.drop_column("fork")
        batch.drop_column("parent_item")
