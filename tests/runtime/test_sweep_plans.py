"""A worker's idle pass reads the wait table through its index, also after ANALYZE.

With every row ``waiting``, SQLite's statistics (``ANALYZE``) say that one
phase covers the whole table; the queries of a pass must still search the
index ``ix_wf_wait_phase_due`` instead of scanning the table each time.
(PostgreSQL and MariaDB keep value histograms; ``benchmarks/bench_waits.py``
shows their plans over 100,000 timers.)
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from workflow.runtime import Waits
from workflow.runtime.waits import waits
from workflow.storage import Store


@pytest.mark.parametrize("analyzed", [False, True], ids=["fresh", "analyzed"])
def test_an_idle_pass_searches_the_index_on_sqlite(tmp_path: Path, analyzed: bool) -> None:
    store = Store(f"sqlite:///{tmp_path / 'plans.sqlite'}")
    store.create_all()
    run = store.create_workflow("timers")
    now = store.now()
    rows = [
        {
            "id": str(uuid.uuid4()),
            "workflow_uuid": run,
            "token_position": index,
            "step": "nap",
            "kind": "sleep",
            "phase": "waiting",
            "due": now + timedelta(days=1, seconds=index),
            "spec": {},
            "approvals": 0,
            "rejections": 0,
            "version": 0,
            "created": now,
        }
        for index in range(2000)
    ]
    with store.transaction("store timers") as conn:
        conn.execute(waits.insert(), rows)
        if analyzed:
            conn.exec_driver_sql("ANALYZE")
    caught: list[tuple[str, Any]] = []

    def catch(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if "FROM wf_wait" in statement:
            caught.append((statement, parameters))

    event.listen(store.sql_engine, "before_cursor_execute", catch)
    try:
        assert Waits(store).fire_due() == 0
        assert Waits(store).decided() == {}
    finally:
        event.remove(store.sql_engine, "before_cursor_execute", catch)
    assert len(caught) == 2
    with store.sql_engine.connect() as conn:
        for statement, parameters in caught:
            plan = [
                row[-1]
                for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            ]
            assert any("USING INDEX ix_wf_wait_phase_due" in line for line in plan), plan
            assert not any(line.startswith("SCAN wf_wait") for line in plan), plan
    store.dispose()
