"""The engine's hooks: a custom ``ActionMapper`` is the one used, wherever tasks run.

Generic engine only: the other modes bring their own processing factory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from workflow.engine import ActionMapper, GenericWorkflowEngine, ProcessingFactory
from workflow.patterns import IF
from workflow.utils import classproperty

from .modes import Recorder, items, task_name
from .tasks import always


class RecordingMapper(ActionMapper):
    """Records the tasks its per-task hooks see."""

    calls: ClassVar[list[tuple[str, str]]] = []

    @staticmethod
    def before_each_callback(eng: GenericWorkflowEngine, callback_func: Any, obj: Any) -> None:
        RecordingMapper.calls.append(("before", task_name(callback_func)))

    @staticmethod
    def after_each_callback(eng: GenericWorkflowEngine, callback_func: Any, obj: Any) -> None:
        RecordingMapper.calls.append(("after", task_name(callback_func)))


class RecordingFactory(ProcessingFactory):
    @classproperty
    def action_mapper(cls) -> type[ActionMapper]:
        return RecordingMapper


class MappedEngine(GenericWorkflowEngine):
    @classproperty
    def processing_factory(cls) -> type[ProcessingFactory]:
        return RecordingFactory


@pytest.fixture(autouse=True)
def _fresh_mapper() -> Iterator[None]:
    RecordingMapper.calls.clear()
    yield
    RecordingMapper.calls.clear()


def around(*labels: str) -> list[tuple[str, str]]:
    return [(hook, f"rec_{label}") for label in labels for hook in ("before", "after")]


def test_run_callbacks_uses_the_engines_action_mapper_before_any_process() -> None:
    rec = Recorder()
    a, b, c, d = rec.tasks("a", "b", "c", "d")
    eng = MappedEngine()
    eng.callbacks.replace([a, [b, c], d])
    token = ["t0"]

    eng.run_callbacks(eng.callbacks.get(), [token], token)

    assert token == ["t0", "a", "b", "c", "d"]
    assert RecordingMapper.calls == around("a", "b", "c", "d")


def test_the_action_mapper_sees_each_real_task_of_each_token() -> None:
    rec = Recorder()
    a, b, c = rec.tasks("a", "b", "c")
    eng = MappedEngine()
    eng.callbacks.replace([a, IF(always, [b]), c])

    eng.process(items())

    assert RecordingMapper.calls == around("a", "b", "c") * 3
