"""A task's own exception is a task failure, whatever its class is called.

The engine finds its handlers by exception class; a user's class that only
shares a name with one of the library's (``StorageError``,
``HaltProcessing``) must not be taken for it.
"""

from __future__ import annotations

import pytest

from workflow import signals
from workflow.engine_db import DbWorkflowEngine, ObjectStatus, WorkflowStatus
from workflow.storage import PersistentWorkflowEngine

from .modes import Mode, PersistentMode, Recorder, items
from .tasks import TOKENS, fail


class StorageError(Exception):
    """The user's own error, named like the library's storage error."""


class HaltProcessing(Exception):
    """The user's own error, named like the library's halt."""


@pytest.mark.parametrize("error", [StorageError, HaltProcessing])
def test_a_task_error_named_like_a_library_class_is_an_ordinary_failure(
    mode: Mode, error: type[Exception]
) -> None:
    rec = Recorder()
    a, b = rec.tasks("a", "b")
    eng = mode.engine([a, rec.task("boom", then=fail("t1", error=error)), b])
    errors: list[BaseException] = []
    halts: list[object] = []

    with (
        signals.workflow_error.connected_to(lambda sender, **kw: errors.append(kw["exception"])),
        signals.workflow_halted.connected_to(lambda sender, **kw: halts.append(sender)),
        pytest.raises(Exception) as raised,
    ):
        mode.process(eng, items())

    failure = raised.value if isinstance(raised.value, error) else raised.value.__cause__
    assert isinstance(failure, error)
    assert len(errors) == 1
    assert isinstance(errors[0], error)
    assert halts == []
    assert rec.sequences(TOKENS) == {"t0": ["a", "boom", "b"], "t1": ["a", "boom"], "t2": []}

    if isinstance(mode, PersistentMode):
        assert isinstance(eng, PersistentWorkflowEngine)
        assert mode.store is not None
        row = mode.store.workflow(eng.uuid)
        assert WorkflowStatus(row["status"]) is WorkflowStatus.ERROR
        assert row["lock_owner"] is None
        statuses = [ObjectStatus(token["status"]) for token in mode.store.token_rows(eng.uuid)]
        assert statuses[1] is ObjectStatus.ERROR
    if isinstance(eng, DbWorkflowEngine):
        assert eng.db_obj.status is WorkflowStatus.ERROR
        assert eng.db_obj.objects[1].status == ObjectStatus.ERROR.value
