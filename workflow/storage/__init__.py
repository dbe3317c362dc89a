"""Durable runs: SQLAlchemy storage for workflows, their tokens and their history.

Needs the ``db`` extra: ``pip install 'workflow-ng[db]'`` (SQLAlchemy 2 and
Alembic). SQLite is the default database; PostgreSQL (psycopg 3) and MariaDB
(PyMySQL) are supported for deployments.

.. versionadded:: 3.0
"""

from __future__ import annotations

from ..errors import WorkflowImportError

try:
    import sqlalchemy  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise WorkflowImportError(
        "workflow.storage needs SQLAlchemy: install it with pip install 'workflow-ng[db]'"
    ) from exc

from .codec import JSONCodec
from .definitions import Definition, Definitions
from .logs import DatabaseLogHandler
from .models import (
    Base,
    DefinitionRecord,
    RunKeyRecord,
    StatusChangeRecord,
    SyslogRecord,
    TokenRecord,
    TransitionRecord,
    WorkflowRecord,
)
from .persistent import CheckpointPolicy, PersistentWorkflowEngine, Token
from .schema import current_revision, head_revision, upgrade
from .store import Store

__all__ = [
    "Base",
    "CheckpointPolicy",
    "DatabaseLogHandler",
    "Definition",
    "DefinitionRecord",
    "Definitions",
    "JSONCodec",
    "PersistentWorkflowEngine",
    "RunKeyRecord",
    "StatusChangeRecord",
    "Store",
    "SyslogRecord",
    "Token",
    "TokenRecord",
    "TransitionRecord",
    "WorkflowRecord",
    "current_revision",
    "head_revision",
    "upgrade",
]
