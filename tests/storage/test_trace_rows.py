"""How trace rows are made and stored: their times, their order, rows with and without an error.

Every test runs on SQLite, PostgreSQL and MariaDB (the ``store`` fixture).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from workflow.storage import PersistentWorkflowEngine, Store
from workflow.storage.trace import TraceBuffer, insert_trace

#: Times that round to the microsecond in each way, one that rounds up to the next second.
STAMPS = [1_765_000_000.0, 1_765_000_000.0000004, 1_765_000_000.9999996, 1_765_000_059.5, 1.25]


def utc(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, timezone.utc).replace(tzinfo=None)


def noted(stamps: list[float]) -> TraceBuffer:
    buffer = TraceBuffer("0" * 36, "host:1")
    for index, stamp in enumerate(stamps):
        buffer.note(index, "step", (0, index), "completed", stamp, 0.5)
    return buffer


def test_row_times_are_the_utc_datetimes_of_the_noted_clock_readings() -> None:
    buffer = noted(STAMPS)
    expected = [utc(stamp) for stamp in STAMPS]
    assert [row[5] for row in buffer.table_rows()] == expected
    assert [row[5] for row in buffer.table_rows(text_times=True)] == [
        moment.isoformat(" ", "microseconds") for moment in expected
    ]


def test_a_negative_duration_from_a_clock_set_back_is_stored_as_zero() -> None:
    buffer = TraceBuffer("0" * 36, "host:1")
    buffer.note(0, "step", [1, 2], "completed", STAMPS[0], -0.25)
    [row] = buffer.table_rows()
    assert (row[3], row[6]) == ("[1, 2]", 0.0)


def test_stored_times_read_back_to_the_microsecond(store: Store) -> None:
    uid = store.create_workflow("times")
    buffer = noted(STAMPS)
    buffer.uuid = uid
    with store.transaction("store trace") as conn:
        insert_trace(conn, buffer)
    rows = sorted(store.trace(uid), key=lambda row: row.token)
    assert [row.started for row in rows] == [utc(stamp) for stamp in STAMPS]
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
