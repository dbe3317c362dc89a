"""Run the migrations of the storage tables on the connection the caller passes.

Alembic executes this file; :func:`workflow.storage.schema.upgrade` builds
the configuration in code and hands over an open connection, inside its
transaction, as ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context
from alembic.util import CommandError
from sqlalchemy.engine import Connection

from workflow.storage.models import Base
from workflow.storage.schema import VERSION_TABLE


def run_migrations() -> None:
    """Run the pending migrations on the connection given in the configuration."""
    connection = context.config.attributes.get("connection")
    if context.is_offline_mode() or not isinstance(connection, Connection):
        raise CommandError(
            "the workflow migrations run on a live connection: "
            "call workflow.storage.schema.upgrade() instead of the alembic command"
        )
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        # SQLite alters tables by copying them; autogenerate should write batch operations.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
