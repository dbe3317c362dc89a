"""Store when a traced task started as seconds since the epoch (UTC), a number.

The trace writes a row per task; a number is what the clock gives and the
cheapest value to write (no datetime made, no text formatted per row).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 04:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The type as it was at revision 0010; a migration never imports today's models.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

#: Per backend: the seconds since the epoch of the naive UTC ``started``, to the microsecond.
_TO_EPOCH = {
    # SQLite keeps the text SQLAlchemy wrote, 'YYYY-MM-DD HH:MM:SS.ffffff'.
    "sqlite": "CAST(strftime('%s', substr(started, 1, 19)) AS REAL)"
    " + CAST('0' || substr(started, 20) AS REAL)",
    "postgresql": "EXTRACT(EPOCH FROM started)",
    "mysql": "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', started) / 1000000.0",
}
#: Per backend: the naive UTC datetime of the seconds ``started`` since the epoch.
_FROM_EPOCH = {
    "sqlite": "strftime('%Y-%m-%d %H:%M:%S', CAST(round(started * 1000000) AS INTEGER) / 1000000,"
    " 'unixepoch') || '.' || substr('00000' || (CAST(round(started * 1000000) AS INTEGER)"
    " % 1000000), -6)",
    "postgresql": "TIMESTAMP '1970-01-01' + started * INTERVAL '1 second'",
    "mysql": "TIMESTAMPADD(MICROSECOND, ROUND(started * 1000000), '1970-01-01 00:00:00')",
}


def _dialect() -> str:
    name = op.get_bind().dialect.name
    return "mysql" if name == "mariadb" else name


def upgrade() -> None:
    """Turn ``wf_trace.started`` from a timestamp into a number of seconds since the epoch."""
    with op.batch_alter_table("wf_trace") as batch:
        batch.add_column(sa.Column("started_at", sa.Double(), nullable=True))
    op.execute(f"UPDATE wf_trace SET started_at = {_TO_EPOCH[_dialect()]}")
    with op.batch_alter_table("wf_trace") as batch:
        batch.drop_column("started")
        batch.alter_column(
            "started_at", new_column_name="started", existing_type=sa.Double(), nullable=False
        )


def downgrade() -> None:
    """Turn ``wf_trace.started`` back into a timestamp."""
    with op.batch_alter_table("wf_trace") as batch:
        batch.add_column(sa.Column("started_at", Timestamp, nullable=True))
    op.execute(f"UPDATE wf_trace SET started_at = {_FROM_EPOCH[_dialect()]}")
    with op.batch_alter_table("wf_trace") as batch:
        batch.drop_column("started")
        batch.alter_column(
            "started_at", new_column_name="started", existing_type=Timestamp, nullable=False
        )
