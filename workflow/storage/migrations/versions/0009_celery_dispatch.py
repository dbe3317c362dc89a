"""Record when a work item's message was last sent to a task queue (Celery).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 01:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The type as it was at this revision; a migration never imports today's models.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Add ``wf_work.dispatched``: no item stored so far was sent anywhere."""
    with op.batch_alter_table("wf_work") as batch:
        batch.add_column(sa.Column("dispatched", Timestamp, nullable=True))


def downgrade() -> None:
    """Drop ``wf_work.dispatched``."""
    with op.batch_alter_table("wf_work") as batch:
        batch.drop_column("dispatched")
