"""How trace rows are made and stored: their times, their order, rows with and without an error.

Every test runs on SQLite, PostgreSQL and MariaDB (the ``store`` fixture).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from workflow.storage import PersistentWorkflowEngine, Store
from workflow.storage.models import Timestamp
from workflow.storage.schema import downgrade, upgrade
from workflow.storage.trace import TraceBuffer, insert_trace

#: The columns of ``wf_trace`` a migration test fills, but ``started``.
COLUMNS = [
    "workflow_uuid",
    "token_position",
    "step",
    "callback_pos",
    "outcome",
    "duration",
    "worker",
]
#: Times that round to the microsecond in each way, one that rounds up to the next second.
STAMPS = [1_765_000_000.0, 1_765_000_000.0000004, 1_765_000_000.9999996, 1_765_000_059.5, 1.25]


def utc(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, timezone.utc).replace(tzinfo=None)


def noted(uuid: str, stamps: list[float]) -> TraceBuffer:
    buffer = TraceBuffer(uuid, "host:1")
    for index, stamp in enumerate(stamps):
        buffer.note(index, "step", (0, index), "completed", stamp, 0.5)
    return buffer


def test_rows_are_noted_ready_to_write_and_made_whole_for_a_server() -> None:
    buffer = noted("0" * 36, STAMPS[:1])
    buffer.note(1, "x" * 300, [1, 2], "failed", STAMPS[1], -0.25, ValueError("bad"))
    assert buffer.rows == [
        ("0" * 36, 0, "step", "[0, 0]", "completed", STAMPS[0], 0.5, "host:1"),
        ("0" * 36, 1, "x" * 255, "[1, 2]", "failed", STAMPS[1], 0.0, "host:1", "ValueError", "bad"),
    ]
    assert buffer.errors == 1
    assert buffer.table_rows()[0] == (*buffer.rows[0], None, None)
    buffer.written()
    assert (buffer.rows, buffer.errors) == ([], 0)


def test_stored_times_read_back_as_utc_datetimes_to_the_microsecond(store: Store) -> None:
    uid = store.create_workflow("times")
    with store.transaction("store trace") as conn:
        insert_trace(conn, noted(uid, STAMPS))
    rows = sorted(store.trace(uid), key=lambda row: row.token)
    assert [row.started for row in rows] == [utc(stamp) for stamp in STAMPS]
    assert [row.ended - row.started for row in rows] == [timedelta(seconds=0.5)] * len(STAMPS)
    assert [row.callback_pos for row in rows] == [[0, index] for index in range(len(STAMPS))]


class Reporter:
    """A task that fails every other call without raising (as a retried attempt does)."""

    __name__ = "reporter"

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, obj: Any, eng: Any) -> None:
        self.calls += 1

    def trace_failure(self, obj: Any) -> str | None:
        return "Busy: try again" if self.calls % 2 else None


def add_one(obj: Any, eng: Any) -> None:
    obj.data["n"] = obj.data.get("n", 0) + 1


def test_rows_with_and_without_an_error_are_stored_in_the_order_their_tasks_ran(
    store: Store,
) -> None:
    reporter = Reporter()
    steps = [add_one, reporter, add_one, reporter, reporter, add_one]
    engine = PersistentWorkflowEngine.with_name(
        "mixed", store=store, definition=steps, checkpoint="halt"
    )
    engine.process([{"n": 0}, {"n": 5}])  # no checkpoint before the end: one batch of rows
    rows = store.trace(engine.uuid)
    busy = ("failed", "Busy", "try again")
    done = ("completed", None, None)
    # The reporter's calls go on from one token to the next: 1, 3 and 5 fail.
    assert [
        (row.token, row.step, row.outcome, row.error_type, row.error_message) for row in rows
    ] == [
        (0, "add_one", *done),
        (0, "reporter", *busy),
        (0, "add_one", *done),
        (0, "reporter", *done),
        (0, "reporter", *busy),
        (0, "add_one", *done),
        (1, "add_one", *done),
        (1, "reporter", *done),
        (1, "add_one", *done),
        (1, "reporter", *busy),
        (1, "reporter", *done),
        (1, "add_one", *done),
    ]


def test_migration_0014_turns_stored_times_into_numbers_and_back(db_url: str) -> None:
    moments = [datetime(2026, 12, 6, 4, 40, 59, 999999), datetime(2020, 2, 29, 0, 0, 0, 1)]
    store = Store(db_url)
    try:
        with store.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS wf_alembic_version"))
        upgrade(store, "0013")
        uid = store.create_workflow("before")
        old_trace = sa.table(
            "wf_trace", *(sa.column(name) for name in COLUMNS), sa.column("started", Timestamp)
        )
        values = {"workflow_uuid": uid, "step": "s", "callback_pos": "[0]", "outcome": "completed"}
        values |= {"duration": 0.5, "worker": "w"}
        with store.engine.begin() as conn:
            for token, moment in enumerate(moments):
                conn.execute(
                    sa.insert(old_trace).values(token_position=token, started=moment, **values)
                )
        upgrade(store)
        rows = sorted(store.trace(uid), key=lambda row: row.token)
        assert [row.started for row in rows] == moments
        downgrade(store, "0013")
        with store.engine.connect() as conn:
            stored = conn.execute(sa.select(old_trace.c.started).order_by(sa.text("id"))).scalars()
            assert list(stored) == moments
        upgrade(store)
    finally:
        store.dispose()
