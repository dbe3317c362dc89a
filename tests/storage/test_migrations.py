"""The shipped migrations: they build the models' exact schema on every database."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError

import workflow
from workflow.engine_db import ObjectStatus, WorkflowStatus
from workflow.errors import DatabaseUnavailableError, HaltProcessing, StorageError
from workflow.storage import (
    Base,
    DatabaseLogHandler,
    Definitions,
    PersistentWorkflowEngine,
    Store,
    SyslogRecord,
)
from workflow.storage.schema import (
    MIGRATIONS,
    VERSION_TABLE,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)

TABLES = {
    "wf_schedule",
    "wf_schedule_fire",
    "wf_workflow",
    "wf_token",
    "wf_transition",
    "wf_definition",
    "wf_syslog",
    "wf_run_key",
    "wf_wait",
    "wf_answer",
    "wf_queued_run",
    "wf_work",
    "wf_message",
    "wf_trace",
}
#: The tables of the first revision, 0001; 0002 added the others.
FIRST_TABLES = {"wf_workflow", "wf_token", "wf_transition"}
UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/none"


@pytest.fixture
def empty_store(db_url: str) -> Iterator[Store]:
    """A :class:`Store` on an empty database: no tables, no revision."""
    store = Store(db_url, lock_ttl=5.0)
    # db_url drops the tables and Alembic's default version table, but not ours.
    with store.engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
    yield store
    store.dispose()


def table_names(store: Store) -> set[str]:
    return set(sa.inspect(store.engine).get_table_names())


def schema_differences(store: Store) -> list[Any]:
    """Return what Alembic's autogenerate would change to make the database match the models."""
    opts = {"compare_type": True, "version_table": VERSION_TABLE}
    with store.engine.connect() as conn:
        diff: list[Any] = compare_metadata(
            MigrationContext.configure(conn, opts=opts), Base.metadata
        )
    return diff


def test_upgrade_creates_the_tables_in_an_empty_database(empty_store: Store) -> None:
    assert current_revision(empty_store) is None
    upgrade(empty_store)
    assert current_revision(empty_store) == head_revision()
    assert table_names(empty_store) == TABLES | {VERSION_TABLE}


def test_upgrading_twice_changes_nothing(empty_store: Store) -> None:
    upgrade(empty_store)
    uid = empty_store.create_workflow("kept")
    upgrade(empty_store)
    assert current_revision(empty_store) == head_revision()
    assert empty_store.workflow(uid)["name"] == "kept"
    assert schema_differences(empty_store) == []


def test_migrated_schema_matches_the_models(empty_store: Store) -> None:
    upgrade(empty_store)
    assert schema_differences(empty_store) == []


def test_schema_comparison_notices_a_missing_index(empty_store: Store) -> None:
    upgrade(empty_store)
    [index] = [
        i for i in Base.metadata.tables["wf_workflow"].indexes if i.name == "ix_wf_workflow_name"
    ]
    index.drop(empty_store.engine)
    [(change, missing)] = schema_differences(empty_store)
    assert (change, missing.name) == ("add_index", "ix_wf_workflow_name")


def test_migrated_timestamps_keep_microseconds(empty_store: Store) -> None:
    # Alembic's type comparison does not see MariaDB's fractional seconds.
    upgrade(empty_store)
    moment = datetime(2024, 2, 29, 12, 30, 15, 123456)
    uid = empty_store.create_workflow("precise")
    with empty_store.transaction("test") as conn:
        table = Base.metadata.tables["wf_workflow"]
        conn.execute(table.update().where(table.c.uuid == uid).values(lock_expires=moment))
    assert empty_store.workflow(uid)["lock_expires"] == moment


def add_one(obj: Any, eng: Any) -> None:
    obj.data["n"] += 1


def wait_for_approval(obj: Any, eng: Any) -> None:
    if obj.data["id"] == 1 and not eng.extra_data.get("approved"):
        eng.halt("needs approval")


DEFINITION = [add_one, wait_for_approval, add_one]


def test_persistent_engine_runs_on_a_migrated_database(empty_store: Store) -> None:
    upgrade(empty_store)
    eng = PersistentWorkflowEngine.with_name("migrated", store=empty_store, definition=DEFINITION)
    with pytest.raises(HaltProcessing, match="needs approval"):
        eng.process([{"id": i, "n": 0} for i in range(3)])
    assert [t.status for t in eng.load_tokens()] == [
        ObjectStatus.COMPLETED,
        ObjectStatus.HALTED,
        ObjectStatus.INITIAL,
    ]

    resumed = PersistentWorkflowEngine.from_uuid(eng.uuid, store=empty_store, definition=DEFINITION)
    resumed.extra_data["approved"] = True
    resumed.resume()
    tokens = resumed.load_tokens()
    assert [t.status for t in tokens] == [ObjectStatus.COMPLETED] * 3
    assert [t.data["n"] for t in tokens] == [2, 2, 2]
    assert empty_store.workflow(eng.uuid)["status"] == WorkflowStatus.COMPLETED.value
    workflow_log = [row for row in resumed.transitions() if row["token_position"] is None]
    assert workflow_log[-1]["to_status"] == WorkflowStatus.COMPLETED.value


def test_downgrade_to_base_drops_the_tables(empty_store: Store) -> None:
    upgrade(empty_store)
    empty_store.create_workflow("dropped")
    downgrade(empty_store, "base")
    assert current_revision(empty_store) is None
    assert table_names(empty_store) & TABLES == set()
    upgrade(empty_store)
    assert schema_differences(empty_store) == []


def test_upgrading_from_the_first_revision_keeps_the_runs_and_adds_the_new_tables(
    empty_store: Store,
) -> None:
    upgrade(empty_store, "0001")
    assert table_names(empty_store) == FIRST_TABLES | {VERSION_TABLE}
    uid = "0f0f0f0f-0000-4000-8000-000000000001"
    with empty_store.engine.begin() as conn:  # a run stored by the version of revision 0001
        conn.execute(
            sa.text(
                "INSERT INTO wf_workflow (uuid, name, status, token_pos, callback_pos, "
                "extra_data, definition_name, definition_version, created, modified) "
                "VALUES (:u, 'old', 0, -1, '[0]', '{}', 'flow', 1, :t, :t)"
            ).bindparams(sa.bindparam("t", type_=sa.DateTime())),  # SQLAlchemy writes it
            {"u": uid, "t": empty_store.now()},
        )
    upgrade(empty_store)
    assert current_revision(empty_store) == head_revision()
    assert table_names(empty_store) == TABLES | {VERSION_TABLE}
    assert schema_differences(empty_store) == []
    row = empty_store.workflow(uid)
    assert (row["name"], row["definition_name"], row["definition_version"]) == ("old", "flow", 1)


def test_downgrading_to_the_first_revision_drops_only_the_new_tables(empty_store: Store) -> None:
    upgrade(empty_store)
    uid = empty_store.create_workflow("kept")
    Definitions(empty_store).put("flow", {"steps": []})
    downgrade(empty_store, "0001")
    assert current_revision(empty_store) == "0001"
    assert table_names(empty_store) == FIRST_TABLES | {VERSION_TABLE}
    with empty_store.engine.connect() as conn:  # the models are ahead of 0001
        name = conn.execute(sa.text("SELECT name FROM wf_workflow WHERE uuid = :u"), {"u": uid})
        assert name.scalar_one() == "kept"
    upgrade(empty_store)
    assert Definitions(empty_store).list() == []
    assert empty_store.workflow(uid)["name"] == "kept"


def test_upgrade_counts_the_tokens_of_the_runs_stored_before(empty_store: Store) -> None:
    # Revision 0003 adds wf_workflow.token_count: a run whose input was stored
    # gets its count; a NEW run without tokens keeps NULL (its input never came).
    upgrade(empty_store, "0002")
    now = datetime(2026, 12, 1, 12, 0, 0)
    moment = sa.bindparam("t", type_=sa.DateTime())  # SQLAlchemy writes it, not the driver
    runs = {"halted": (WorkflowStatus.HALTED, 3), "new": (WorkflowStatus.NEW, 2)}
    runs |= {"empty": (WorkflowStatus.NEW, 0), "done": (WorkflowStatus.COMPLETED, 0)}
    with empty_store.engine.begin() as conn:
        for name, (status, count) in runs.items():
            conn.execute(
                sa.text(
                    "INSERT INTO wf_workflow (uuid, name, status, token_pos, callback_pos, "
                    "extra_data, created, modified) VALUES (:n, :n, :s, -1, '[0]', '{}', :t, :t)"
                ).bindparams(moment),
                {"n": name, "s": status.value, "t": now},
            )
            for position in range(count):
                conn.execute(
                    sa.text(
                        "INSERT INTO wf_token (workflow_uuid, position, data, extra_data, "
                        "status, created, modified) VALUES (:n, :p, '{}', '{}', 0, :t, :t)"
                    ).bindparams(moment),
                    {"n": name, "p": position, "t": now},
                )
    upgrade(empty_store)
    counts = {name: empty_store.workflow(name)["token_count"] for name in runs}
    assert counts == {"halted": 3, "new": 2, "empty": None, "done": 0}
    downgrade(empty_store, "0002")
    assert "token_count" not in {
        column["name"] for column in sa.inspect(empty_store.engine).get_columns("wf_workflow")
    }


def test_migrated_log_table_holds_long_messages(empty_store: Store) -> None:
    # MariaDB's TEXT stops at 64 KB; a traceback may be longer.
    upgrade(empty_store)
    handler = DatabaseLogHandler(empty_store)
    record = logging.LogRecord("long", logging.ERROR, __file__, 1, "é" * 70_000, None, None)
    handler.handle(record)
    handler.close()  # writes what the writer thread has not written yet
    assert handler.dropped == 0
    with empty_store.session() as session:
        [message] = session.scalars(sa.select(SyslogRecord.message)).all()
    assert message == "é" * 70_000


@pytest.mark.parametrize("kind", ["store", "engine", "url"])
def test_upgrade_takes_a_store_an_engine_or_a_url(
    empty_store: Store, db_url: str, kind: str
) -> None:
    targets: dict[str, Store | sa.Engine | str] = {
        "store": empty_store,
        "engine": empty_store.engine,
        "url": db_url,
    }
    target = targets[kind]
    upgrade(target)
    assert current_revision(target) == head_revision()
    assert table_names(empty_store) == TABLES | {VERSION_TABLE}


@pytest.mark.parametrize("call", [upgrade, current_revision])
def test_unreachable_database_raises_database_unavailable(call: Any) -> None:
    with pytest.raises(DatabaseUnavailableError) as info:
        call(UNREACHABLE)
    assert isinstance(info.value.__cause__, sa.exc.OperationalError)
    assert info.value.operation in {"schema upgrade", "schema lookup"}


def test_upgrading_tables_made_without_migrations_raises_storage_error(
    empty_store: Store,
) -> None:
    empty_store.create_all()
    with pytest.raises(StorageError, match="wf_workflow") as info:
        upgrade(empty_store)
    assert isinstance(info.value.__cause__, sa.exc.DBAPIError)
    assert current_revision(empty_store) is None


def test_unknown_revision_raises_storage_error(empty_store: Store) -> None:
    with pytest.raises(StorageError, match="nonexistent") as info:
        upgrade(empty_store, "nonexistent")
    assert isinstance(info.value.__cause__, CommandError)
    assert info.value.operation == "schema upgrade"


def test_database_at_a_revision_from_a_newer_release_raises_storage_error(
    empty_store: Store,
) -> None:
    upgrade(empty_store)
    with empty_store.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = 'ffff'"))
    with pytest.raises(StorageError, match="ffff"):
        upgrade(empty_store)
    assert current_revision(empty_store) == "ffff"


def test_alembic_command_without_a_connection_is_refused() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with pytest.raises(CommandError, match=r"workflow\.storage\.schema\.upgrade"):
        command.upgrade(config, "head")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is new in Python 3.11")
def test_every_migration_file_is_package_data() -> None:
    import tomllib

    pyproject = Path(workflow.__file__).parent.parent / "pyproject.toml"
    with pyproject.open("rb") as file:
        patterns = tomllib.load(file)["tool"]["setuptools"]["package-data"]["workflow"]
    package = Path(workflow.__file__).parent
    shipped = [
        PurePosixPath(path.relative_to(package).as_posix())
        for path in MIGRATIONS.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    ]
    assert len(shipped) >= 4
    missing = [path for path in shipped if not any(path.match(p) for p in patterns)]
    assert missing == []
