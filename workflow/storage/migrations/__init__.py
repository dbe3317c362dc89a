"""The Alembic environment of the storage tables; run it with :mod:`workflow.storage.schema`."""
