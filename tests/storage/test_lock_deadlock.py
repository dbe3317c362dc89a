"""Store.acquire tries again when the database broke a deadlock (seen with 8 processes on MariaDB).

The retry itself runs for real in ``tests/cli/test_resume_race.py`` on MariaDB;
here, which database errors count as a deadlock.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from workflow.errors import StorageError
from workflow.storage.store import _deadlock


class DriverError(Exception):
    """A driver's exception: pymysql's carries the error number, psycopg's the SQLSTATE."""

    def __init__(self, *args: object, sqlstate: str | None = None) -> None:
        super().__init__(*args)
        self.sqlstate = sqlstate


def storage_error(original: Exception) -> StorageError:
    try:
        raise StorageError("the database refused the acquire lock") from sa_exc.OperationalError(
            "UPDATE wf_workflow ...", {}, original
        )
    except StorageError as error:
        return error


def test_deadlocks_of_mariadb_and_postgresql_are_recognised() -> None:
    assert _deadlock(storage_error(DriverError(1213, "Deadlock found when trying to get lock")))
    assert _deadlock(storage_error(DriverError("deadlock detected", sqlstate="40P01")))
    assert _deadlock(storage_error(DriverError("could not serialize", sqlstate="40001")))


def test_other_errors_are_not_deadlocks() -> None:
    assert not _deadlock(storage_error(DriverError(1146, "Table doesn't exist")))
    assert not _deadlock(storage_error(DriverError("syntax error", sqlstate="42601")))
    assert not _deadlock(StorageError("no cause"))
