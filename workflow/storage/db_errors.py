"""The one boundary where SQLAlchemy's exceptions become :mod:`workflow.errors` ones."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import exc as sa_exc

from ..errors import DatabaseUnavailableError, StorageError, TokenEncodingError

__all__ = ["is_contention", "map_errors"]


@contextmanager
def map_errors(
    operation: str, *, workflow: str | None = None, token: int | None = None
) -> Iterator[None]:
    """Translate SQLAlchemy's exceptions into :class:`~workflow.errors.StorageError`.

    The one place where database exceptions become ours, each naming the
    operation, the workflow and the token, chained to the original.
    """
    context: dict[str, Any] = {"workflow": workflow, "token": token, "operation": operation}
    try:
        yield
    except StorageError as error:
        for key, value in context.items():
            if getattr(error, key, None) is None:
                setattr(error, key, value)
        raise
    except sa_exc.StatementError as exc:
        original = exc.orig
        if isinstance(original, TokenEncodingError):
            raise TokenEncodingError(original.message, **context) from original
        if (isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated) or (
            # no statement: the connection itself could not be made
            isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError))
            and exc.statement is None
        ):
            raise DatabaseUnavailableError(
                f"the database is unavailable: {original}", **context
            ) from exc
        raise StorageError(f"the database refused the {operation}: {original}", **context) from exc
    except (sa_exc.DisconnectionError, sa_exc.TimeoutError) as exc:
        raise DatabaseUnavailableError(f"the database is unavailable: {exc}", **context) from exc
    except sa_exc.SQLAlchemyError as exc:
        raise StorageError(f"the {operation} failed: {exc}", **context) from exc


#: What the databases answer when a transaction lost a race for row locks and
#: may simply be tried again: MariaDB's deadlock (1213) and lock wait timeout
#: (1205); PostgreSQL's serialization failure, deadlock and lock not available.
_MARIADB_CONTENTION = {1205, 1213}
_POSTGRESQL_CONTENTION = {"40001", "40P01", "55P03"}


def is_contention(error: StorageError) -> bool:
    """Tell whether ``error`` says the database lost a race for locks (worth trying again).

    A deadlock victim, a serialisation failure, a lock wait timeout, or
    SQLite's "database is locked".
    """
    cause = error.__cause__
    if not isinstance(cause, sa_exc.DBAPIError):
        return False
    original = cause.orig
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in _POSTGRESQL_CONTENTION
    args = getattr(original, "args", ())
    if args and isinstance(args[0], int):
        return args[0] in _MARIADB_CONTENTION
    return isinstance(cause, sa_exc.OperationalError) and "database is locked" in str(original)
