"""A wait the token went past is ``done``: no worker continues the run again for it.

A wait may be decided as it opens (a message kept for a ``receive``, a
back-off of no time): the token then goes on without halting, and nothing
but the task that hands on the wait knows it was passed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.storage.conftest import BACKENDS, empty_database
from workflow.runtime import RECEIVE, RETRY, Waits, Worker
from workflow.storage import PersistentWorkflowEngine, Store


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store with the tables created, on each database of the storage suite."""
    found = Store(empty_database(request.param, tmp_path), lock_ttl=5.0)
    found.create_all()
    yield found
    found.dispose()


def paid(obj: Any, eng: Any) -> None:
    obj.data["paid"] = obj.extra_data["payment"]["data"]


def test_a_receive_that_takes_a_kept_message_is_done_when_the_token_passes_it(
    store: Store,
) -> None:
    steps = [*RECEIVE("payment", "paid"), paid]
    engine = PersistentWorkflowEngine.with_name("kept", store=store, definition=steps)
    waits = Waits(store)
    assert waits.send(engine.uuid, "paid", 12).wait is None  # kept: no step waits yet
    engine.process([{}])
    assert store.token_rows(engine.uuid)[0]["data"] == {"paid": 12}
    [wait] = waits.of_run(engine.uuid)
    assert (wait.decision, wait.phase) == ("received", "done")
    assert Worker(store, {"kept": steps}).run_once().continued == []


def test_a_backoff_decided_as_it_opens_is_done_when_the_task_is_tried_again(
    store: Store,
) -> None:
    tries: list[int] = []

    def flaky(obj: Any, eng: Any) -> None:
        tries.append(1)
        if len(tries) < 3:
            raise ConnectionError("not yet")

    steps = RETRY(flaky, attempts=3, backoff="PT0S", jitter=False)
    engine = PersistentWorkflowEngine.with_name("flaky", store=store, definition=steps)
    engine.process([{}])
    assert len(tries) == 3
    found = Waits(store).of_run(engine.uuid)
    assert [(wait.kind, wait.decision, wait.phase) for wait in found] == [
        ("retry", "fired", "done"),
        ("retry", "fired", "done"),
    ]
    assert Worker(store, {"flaky": steps}).run_once().continued == []
