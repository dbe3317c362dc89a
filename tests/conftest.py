"""Fixtures shared by the engine's contract suite."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from workflow.engine import ActionMapper, GenericWorkflowEngine, ProcessingFactory
from workflow.utils import classproperty


class CountingMapper(ActionMapper):
    """An action mapper whose per-task hooks do something, so the engine cannot skip them."""

    calls = 0

    @staticmethod
    def before_each_callback(eng: Any, callback_func: Any, obj: Any) -> None:
        CountingMapper.calls += 1

    @staticmethod
    def after_each_callback(eng: Any, callback_func: Any, obj: Any) -> None:
        CountingMapper.calls += 1


class CountingFactory(ProcessingFactory):
    @classproperty
    def action_mapper(cls) -> type[ActionMapper]:
        return CountingMapper


class HookedEngine(GenericWorkflowEngine):
    """Runs every task through the hooked interpreter (hooks and execute_callback)."""

    @classproperty
    def processing_factory(cls) -> type[ProcessingFactory]:
        return CountingFactory

    def execute_callback(self, callback: Any, obj: Any) -> None:
        callback(obj, self)


@pytest.fixture(params=[GenericWorkflowEngine, HookedEngine], ids=["plain", "hooked"])
def make_engine(request: pytest.FixtureRequest) -> Callable[..., GenericWorkflowEngine]:
    """Build an engine of each kind, with a definition already registered."""
    engine_cls = request.param

    def make(definition: Any = None, key: str = "*") -> GenericWorkflowEngine:
        eng = engine_cls()
        if definition is not None:
            eng.callbacks.replace(definition, key)
        return eng

    return make


def append(word: str) -> Callable[[Any, Any], None]:
    """A task appending ``word`` to a list token."""

    def task(obj: Any, eng: Any) -> None:
        obj.append(word)

    task.__name__ = word
    return task


def halt_task(obj: Any, eng: Any) -> None:
    eng.halt("halted by test")


#: The database servers a test may be parametrised over (as ``backend``), and the
#: Celery brokers (``tests/integrations``).
_SERVER_BACKENDS = frozenset({"postgresql", "mariadb", "redis", "rabbitmq"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``WORKFLOW_TEST_SERVERS=0``, leave out the cases that run on a database server.

    The other supported Pythons run the suite this way in ``run-tests.sh``: the
    servers' cases ran once already, on the main Python, and they test the
    databases, not the interpreter.
    """
    import os

    if os.environ.get("WORKFLOW_TEST_SERVERS", "1") != "0":
        return
    kept: list[pytest.Item] = []
    left_out: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        on_server = any(
            value in _SERVER_BACKENDS for value in params.values() if isinstance(value, str)
        )
        (left_out if on_server else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
