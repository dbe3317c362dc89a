"""Database failures reach users as our exceptions, chained to SQLAlchemy's.

First the mapping itself (:func:`workflow.storage.store.map_errors`) for every
exception class SQLAlchemy has; then real outages: a server that does not
answer, connections killed by the server in the middle of a run, and a SQLite
file another process keeps locked.
"""

from __future__ import annotations

import inspect
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import exc as orm_exc

from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.errors import (
    DatabaseUnavailableError,
    StorageError,
    TokenEncodingError,
    WorkflowLockedError,
)
from workflow.storage import CheckpointPolicy, PersistentWorkflowEngine, Store, Token
from workflow.storage.store import map_errors

STATEMENT = "UPDATE wf_token SET data=? WHERE wf_token.position = ?"
PARAMS = ("{}", 3)


def dbapi_error(cls: type[sa_exc.DBAPIError], **options: Any) -> sa_exc.DBAPIError:
    """Build ``cls`` the way SQLAlchemy does, around a driver exception."""
    options.setdefault("statement", STATEMENT)
    options.setdefault("params", PARAMS)
    return cls(orig=Exception("the driver's message"), **options)


def mapped(raised: BaseException) -> StorageError:
    """Return what ``map_errors`` turns ``raised`` into, checking the context it adds."""
    with pytest.raises(StorageError) as info, map_errors("checkpoint", workflow="wf-1", token=3):
        raise raised
    error = info.value
    assert (error.workflow, error.token, error.operation) == ("wf-1", 3, "checkpoint")
    assert str(error).endswith("(workflow 'wf-1', token 3, during 'checkpoint')")
    return error


UNAVAILABLE = DatabaseUnavailableError
ENCODING_PROBLEM = TokenEncodingError("cannot store $.tags as JSON: a builtins.set")

MAPPING = [
    # The server cannot be reached: no statement ran (connecting failed) ...
    (dbapi_error(sa_exc.OperationalError, statement=None), UNAVAILABLE, "OperationalError-connect"),
    (dbapi_error(sa_exc.InterfaceError, statement=None), UNAVAILABLE, "InterfaceError-connect"),
    # ... or the connection died under a statement (SQLAlchemy invalidated it) ...
    (
        dbapi_error(sa_exc.OperationalError, connection_invalidated=True),
        UNAVAILABLE,
        "OperationalError-disconnect",
    ),
    (
        dbapi_error(sa_exc.DBAPIError, connection_invalidated=True),
        UNAVAILABLE,
        "DBAPIError-disconnect",
    ),
    # ... or the pool could not give a connection.
    (sa_exc.DisconnectionError("the connection was lost"), UNAVAILABLE, "DisconnectionError"),
    (sa_exc.InvalidatePoolError("invalidate the pool"), UNAVAILABLE, "InvalidatePoolError"),
    (sa_exc.TimeoutError("QueuePool limit reached"), UNAVAILABLE, "TimeoutError"),
    # The database refused a statement.
    (dbapi_error(sa_exc.OperationalError), StorageError, "OperationalError-statement"),
    (dbapi_error(sa_exc.InterfaceError), StorageError, "InterfaceError-statement"),
    (dbapi_error(sa_exc.IntegrityError), StorageError, "IntegrityError"),
    (dbapi_error(sa_exc.ProgrammingError), StorageError, "ProgrammingError"),
    (dbapi_error(sa_exc.DataError), StorageError, "DataError"),
    (dbapi_error(sa_exc.InternalError), StorageError, "InternalError"),
    (dbapi_error(sa_exc.NotSupportedError), StorageError, "NotSupportedError"),
    (dbapi_error(sa_exc.DatabaseError), StorageError, "DatabaseError"),
    (dbapi_error(sa_exc.DBAPIError), StorageError, "DBAPIError"),
    # Our codec failed while SQLAlchemy bound a parameter.
    (
        sa_exc.StatementError("bind failed", STATEMENT, PARAMS, ENCODING_PROBLEM),
        TokenEncodingError,
        "StatementError-TokenEncodingError",
    ),
    (
        sa_exc.StatementError("bind failed", STATEMENT, PARAMS, TypeError("no")),
        StorageError,
        "StatementError-TypeError",
    ),
    # SQLAlchemy's own errors.
    (sa_exc.SQLAlchemyError("something failed"), StorageError, "SQLAlchemyError"),
    (sa_exc.ResourceClosedError("this result is closed"), StorageError, "ResourceClosedError"),
    (sa_exc.PendingRollbackError("roll back first"), StorageError, "PendingRollbackError"),
    (orm_exc.StaleDataError("0 rows matched"), StorageError, "StaleDataError"),
]


@pytest.mark.parametrize(("raised", "expected"), [pytest.param(r, e, id=i) for r, e, i in MAPPING])
def test_each_sqlalchemy_error_becomes_ours(
    raised: BaseException, expected: type[StorageError]
) -> None:
    error = mapped(raised)
    assert type(error) is expected
    if expected is TokenEncodingError:
        # The codec's own exception is the cause; its message is kept as it is.
        assert error.__cause__ is ENCODING_PROBLEM
        assert error.message == ENCODING_PROBLEM.message
        assert isinstance(error, TypeError)
    else:
        assert error.__cause__ is raised


def sqlalchemy_error_classes() -> list[type[sa_exc.SQLAlchemyError]]:
    """Every exception class of ``sqlalchemy.exc`` and ``sqlalchemy.orm.exc``."""
    found = {
        cls
        for module in (sa_exc, orm_exc)
        for cls in vars(module).values()
        if inspect.isclass(cls) and issubclass(cls, sa_exc.SQLAlchemyError)
    }
    return sorted(found, key=lambda cls: cls.__name__)


def build(cls: type[sa_exc.SQLAlchemyError]) -> sa_exc.SQLAlchemyError:
    """Build an instance of any SQLAlchemy exception class, whatever its signature."""
    if issubclass(cls, sa_exc.DBAPIError):
        return dbapi_error(cls)
    if issubclass(cls, sa_exc.StatementError):
        return cls("failed", STATEMENT, PARAMS, ValueError("no"))
    special: dict[type[Any], tuple[Any, ...]] = {
        sa_exc.CircularDependencyError: ("a cycle", [], []),
        sa_exc.NoReferencedColumnError: ("no column", "wf_token", "position"),
        sa_exc.NoReferencedTableError: ("no table", "wf_token"),
        sa_exc.UnsupportedCompilationError: (object(), sa.sql.ClauseElement),
        orm_exc.LoaderStrategyException: (None, "data", None, None, ("lazy", "x")),
    }
    if cls in special:
        built: sa_exc.SQLAlchemyError = cls(*special[cls])
        return built
    if cls is orm_exc.ObjectDeletedError:  # needs an ORM instance state
        error = cls.__new__(cls)
        Exception.__init__(error, "the row was deleted")
        return error
    return cls("failed")


@pytest.mark.parametrize("cls", sqlalchemy_error_classes(), ids=lambda cls: cls.__name__)
def test_every_sqlalchemy_exception_class_is_mapped(cls: type[sa_exc.SQLAlchemyError]) -> None:
    raised = build(cls)
    error = mapped(raised)
    assert error.__cause__ is raised
    if issubclass(cls, (sa_exc.DisconnectionError, sa_exc.TimeoutError)):
        assert type(error) is DatabaseUnavailableError
    else:  # raised under a statement, without a lost connection: refused, not unavailable
        assert type(error) is StorageError
    shown = raised.orig if isinstance(raised, sa_exc.StatementError) else raised
    assert str(shown) in str(error)


@pytest.mark.parametrize(
    "cls",
    [c for c in sqlalchemy_error_classes() if issubclass(c, sa_exc.DBAPIError)],
    ids=lambda cls: cls.__name__,
)
def test_every_driver_error_on_a_lost_connection_is_unavailable(
    cls: type[sa_exc.DBAPIError],
) -> None:
    raised = dbapi_error(cls, connection_invalidated=True)
    error = mapped(raised)
    assert type(error) is DatabaseUnavailableError
    assert error.__cause__ is raised


def test_our_own_errors_pass_through_with_the_context_filled_in() -> None:
    lost = WorkflowLockedError("lost the lock", workflow="wf-9", operation="lock")
    with pytest.raises(WorkflowLockedError) as info, map_errors("checkpoint", token=3):
        raise lost
    assert info.value is lost
    # What the error already said is kept; what it did not say is added.
    assert (lost.workflow, lost.token, lost.operation) == ("wf-9", 3, "lock")


def test_other_exceptions_are_not_translated() -> None:
    problem = KeyError("not a database problem")
    with pytest.raises(KeyError) as info, map_errors("checkpoint"):
        raise problem
    assert info.value is problem


# -- real outages ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql+psycopg://postgres@127.0.0.1:1/test", id="postgresql"),
        pytest.param("mysql+pymysql://root@127.0.0.1:1/test", id="mariadb"),
        pytest.param("sqlite:///{tmp}/no/such/folder/workflow.sqlite", id="sqlite"),
    ],
)
def test_a_database_that_does_not_answer_is_unavailable(url: str, tmp_path: Path) -> None:
    store = Store(url.format(tmp=tmp_path))
    try:
        with pytest.raises(DatabaseUnavailableError, match="the database is unavailable") as info:
            PersistentWorkflowEngine.from_uuid("0" * 36, store=store)
    finally:
        store.dispose()
    error = info.value
    assert (error.workflow, error.operation) == ("0" * 36, "load workflow")
    assert isinstance(error.__cause__, sa_exc.OperationalError)
    assert error.__cause__.statement is None


def session_id_query(backend: str) -> str:
    return "SELECT pg_backend_pid()" if backend == "postgresql" else "SELECT CONNECTION_ID()"


class Outage:
    """Kill the server sessions of one :class:`Store`, from a connection of our own."""

    def __init__(self, backend: str, db_url: str) -> None:
        self.backend = backend
        #: The server-side id of every connection the store opened, oldest first.
        self.sessions: list[int] = []
        self.store = Store(db_url)
        # AUTOCOMMIT: PostgreSQL shows pg_stat_activity as of the transaction's start.
        self._killer = sa.create_engine(
            db_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT"
        )
        event.listen(self.store.engine, "connect", self._remember)

    def _remember(self, dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(session_id_query(self.backend))
        self.sessions.append(int(cursor.fetchone()[0]))
        cursor.close()

    def _alive(self, conn: sa.Connection) -> set[int]:
        if self.backend == "postgresql":
            query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        else:
            query = "SELECT id FROM information_schema.processlist"
        return {int(pid) for pid in conn.execute(sa.text(query)).scalars()}

    def kill(self) -> int:
        """Kill the store's open sessions; wait until the server dropped them; count them."""
        with self._killer.connect() as conn:
            victims = sorted(self._alive(conn) & set(self.sessions))
            if self.backend == "postgresql":
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                        "AND pid = ANY(:victims)"
                    ),
                    {"victims": victims},
                )
            else:
                for session in victims:
                    conn.execute(sa.text(f"KILL {session:d}"))
            deadline = time.monotonic() + 5
            while self._alive(conn) & set(victims):
                assert time.monotonic() < deadline, "the server did not drop the sessions"
                time.sleep(0.02)
        return len(victims)

    def close(self) -> None:
        self.store.dispose()
        self._killer.dispose()


@pytest.fixture
def outage(backend: str, db_url: str, store: Store) -> Iterator[Outage]:
    outage = Outage(backend, db_url)
    yield outage
    outage.close()


def count_and_step(calls: Counter[int]) -> Any:
    def step(obj: Token, eng: PersistentWorkflowEngine) -> None:
        calls[obj.position] += 1
        obj.data["n"] = obj.data.get("n", 0) + 1

    return step


def assert_consistent(store: Store, uid: str, tasks: int) -> None:
    """Each stored token holds the data of the tasks its status says ran, no more."""
    for row in store.token_rows(uid):
        status, data = ObjectStatus(row["status"]), row["data"]
        if status is ObjectStatus.COMPLETED:
            assert data == {"n": tasks}, row
        elif status is ObjectStatus.RUNNING:  # committed after the task at callback_pos
            assert data == {"n": row["callback_pos"][0] + 1}, row
        else:
            assert (status, data) == (ObjectStatus.INITIAL, {}), row


def assert_completed_once(store: Store, uid: str, count: int, tasks: int) -> None:
    rows = store.token_rows(uid)
    assert [ObjectStatus(r["status"]) for r in rows] == [ObjectStatus.COMPLETED] * count
    assert [r["data"] for r in rows] == [{"n": tasks}] * count
    done = Counter(
        r["token_position"]
        for r in store.transition_rows(uid)
        if r["to_status"] == ObjectStatus.COMPLETED.value and r["token_position"] is not None
    )
    assert done == Counter(range(count))
    row = store.workflow(uid)
    assert (WorkflowStatus(row["status"]), row["lock_owner"]) == (WorkflowStatus.COMPLETED, None)


SERVERS = ["postgresql", "mariadb"]


@pytest.mark.parametrize("backend", SERVERS)
@pytest.mark.parametrize("policy", list(CheckpointPolicy), ids=lambda p: p.value)
def test_sessions_killed_between_checkpoints_are_replaced_unnoticed(
    outage: Outage, policy: CheckpointPolicy
) -> None:
    calls: Counter[int] = Counter()
    killed: list[int] = []

    def kill_on_token_2(obj: Token, eng: PersistentWorkflowEngine) -> None:
        if obj.position == 2 and not killed:
            killed.append(outage.kill())

    definition = [count_and_step(calls), kill_on_token_2, count_and_step(calls)]
    eng = PersistentWorkflowEngine.with_name(
        "outage", store=outage.store, definition=definition, checkpoint=policy
    )
    opened = len(outage.sessions)
    eng.process([{} for _ in range(5)])

    assert killed[0] >= 1
    assert len(outage.sessions) > opened  # the pool's pre-ping connected again
    assert_completed_once(outage.store, eng.uuid, count=5, tasks=2)
    assert calls == Counter(dict.fromkeys(range(5), 2))


@pytest.mark.parametrize("backend", SERVERS)
@pytest.mark.parametrize(
    "policy",
    [
        CheckpointPolicy.TOKEN,
        pytest.param(
            CheckpointPolicy.TASK,
        ),
        pytest.param(
            CheckpointPolicy.HALT,
        ),
    ],
    ids=lambda p: p.value,
)
def test_sessions_killed_during_a_checkpoint_fail_the_run_and_resume_completes_it(
    outage: Outage, store: Store, policy: CheckpointPolicy
) -> None:
    calls: Counter[int] = Counter()
    armed: list[bool] = []

    def kill_at_next_token_write(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if armed and statement.lstrip().upper().startswith("UPDATE WF_TOKEN"):
            armed.clear()
            assert outage.kill() >= 1

    fired: list[bool] = []

    def arm_on_token_2(obj: Token, eng: PersistentWorkflowEngine) -> None:
        if obj.position == 2 and not fired:
            fired.append(True)
            armed.append(True)  # the next write of a token loses its connection

    event.listen(outage.store.engine, "before_cursor_execute", kill_at_next_token_write)
    definition = [count_and_step(calls), arm_on_token_2, count_and_step(calls)]
    eng = PersistentWorkflowEngine.with_name(
        "outage", store=outage.store, definition=definition, checkpoint=policy
    )
    with pytest.raises(DatabaseUnavailableError) as info:
        eng.process([{} for _ in range(5)])

    error = info.value
    assert error.workflow == eng.uuid
    if policy is CheckpointPolicy.HALT:  # everything is written when the run ends
        assert (error.operation, error.token) == ("finish", None)
    else:
        assert (error.operation, error.token) == ("checkpoint", 2)
    assert isinstance(error.__cause__, sa_exc.OperationalError)
    assert error.__cause__.connection_invalidated
    # What was committed is whole; the engine could not release its lock.
    assert_consistent(store, eng.uuid, tasks=2)
    row = store.workflow(eng.uuid)
    assert (WorkflowStatus(row["status"]), row["lock_owner"]) == (WorkflowStatus.RUNNING, eng.owner)

    eng.resume()  # the pool connects again
    assert_completed_once(store, eng.uuid, count=5, tasks=2)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_sqlite_file_locked_by_another_process_fails_the_checkpoint(
    db_url: str, store: Store
) -> None:
    """SQLite's outage: another connection holds the write lock past the busy timeout."""
    impatient = Store(db_url)

    @event.listens_for(impatient.engine, "connect")
    def wait_briefly(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=100")  # after the store's 30 s

    other = sqlite3.connect(sa.engine.make_url(db_url).database or "", isolation_level=None)
    calls: Counter[int] = Counter()

    def lock_on_token_2(obj: Token, eng: PersistentWorkflowEngine) -> None:
        if obj.position == 2 and calls[2] == 1:
            other.execute("BEGIN EXCLUSIVE")

    definition = [count_and_step(calls), lock_on_token_2, count_and_step(calls)]
    try:
        eng = PersistentWorkflowEngine.with_name("locked", store=impatient, definition=definition)
        with pytest.raises(StorageError, match="database is locked") as info:
            eng.process([{} for _ in range(5)])
        other.execute("ROLLBACK")

        # A lock held by another writer is reported as a refusal, not as an outage.
        error = info.value
        assert type(error) is StorageError
        assert (error.workflow, error.token, error.operation) == (eng.uuid, 2, "checkpoint")
        assert isinstance(error.__cause__, sa_exc.OperationalError)
        assert_consistent(store, eng.uuid, tasks=2)

        eng.resume()
    finally:
        other.close()
        impatient.dispose()
    assert_completed_once(store, eng.uuid, count=5, tasks=2)
