"""What the persistent engine stores as a run goes, with each checkpoint policy.

With ``checkpoint="task"`` the engine commits once per real task, never for a
pattern's internal jumps; no stored position ever holds a negative index.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from workflow.engine_db import ObjectStatus
from workflow.errors import HaltProcessing
from workflow.patterns import IF_ELSE, WHILE
from workflow.storage import PersistentWorkflowEngine, Store, TokenRecord

from .modes import PersistentMode, Recorder, items
from .tasks import TOKENS, halt_once, recorded_fewer, token_is


@contextmanager
def statements(store: Store) -> Iterator[list[tuple[Any, dict[str, Any]]]]:
    """Yield the statements run on ``store`` meanwhile, each with its parameter sets."""
    seen: list[tuple[Any, dict[str, Any]]] = []

    def before_execute(
        conn: Any, clause: Any, multiparams: Any, params: Any, execution_options: Any
    ) -> None:
        sets = [*(multiparams or []), *([params] if params else [])]
        for values in sets:
            if isinstance(values, dict):
                seen.append((clause, values))
            elif isinstance(values, list):
                seen.extend((clause, value) for value in values if isinstance(value, dict))

    sa.event.listen(store.engine, "before_execute", before_execute)
    try:
        yield seen
    finally:
        sa.event.remove(store.engine, "before_execute", before_execute)


def task_checkpoints_in(seen: list[tuple[Any, dict[str, Any]]]) -> list[list[int]]:
    """Return the positions of the token rows stored RUNNING (task checkpoints)."""
    return [
        values["callback_pos"]
        for clause, values in seen
        if isinstance(clause, sa.Update)
        and getattr(clause.table, "name", None) == TokenRecord.__tablename__
        and values.get("status") == ObjectStatus.RUNNING.value
    ]


def test_task_checkpoints_are_one_per_real_task(task_checkpoints: PersistentMode) -> None:
    mode = task_checkpoints
    assert mode.store is not None
    rec = Recorder()
    a, b, c, d = rec.tasks("a", "b", "c", "d")
    eng = mode.engine([a, WHILE(recorded_fewer("b", 3), [b, c]), d])

    with statements(mode.store) as seen:
        mode.process(eng, items())

    assert rec.sequences(TOKENS) == {t: ["a", "b", "c", "b", "c", "b", "c", "d"] for t in TOKENS}
    assert task_checkpoints_in(seen) == [call.callback_pos for call in rec.calls]


def positions_stored(store: Store, uuid: str) -> list[list[int]]:
    found = [store.workflow(uuid)["callback_pos"]]
    found += [row["callback_pos"] for row in store.token_rows(uuid)]
    found += [row["callback_pos"] for row in store.transition_rows(uuid)]
    return [position for position in found if position is not None]


def test_no_stored_callback_pos_holds_a_negative_index(persistent_mode: PersistentMode) -> None:
    mode = persistent_mode
    assert mode.store is not None
    rec = Recorder()
    b, c, d, e = rec.tasks("b", "c", "d", "e")
    gate = rec.task("gate", then=halt_once("t1", when=recorded_fewer("b", 3)))
    # The loop is the first item of its list: jumping back to its test goes to index 0.
    eng = mode.engine(
        [WHILE(recorded_fewer("b", 3), [b, IF_ELSE(token_is("t1"), [gate], [c])]), d, e]
    )
    assert isinstance(eng, PersistentWorkflowEngine)

    with statements(mode.store) as seen:
        with pytest.raises(HaltProcessing):
            mode.process(eng, items())
        mode.resume_until_done(eng)

    written = [
        values["callback_pos"] for _, values in seen if values.get("callback_pos") is not None
    ]
    stored = positions_stored(mode.store, eng.uuid)
    assert written
    assert [position for position in written + stored if min(position) < 0] == []
    assert rec.sequence("t1") == ["b", "gate", "b", "gate", "b", "gate", "d", "e"]
