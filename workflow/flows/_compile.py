"""The compiler: a validated flow body becomes a callback tree of the engine.

Each step becomes one item of its list (a task, or a nested list for the
steps that hold other steps), built from the same patterns Python flows use
(:func:`~workflow.patterns.IF_ELSE`, :func:`~workflow.patterns.WHILE`,
:func:`~workflow.patterns.PARALLEL_SPLIT`), so halting, resuming,
persistence and signals work as for any other definition. All run state
(loop counters, the halt marker) lives in the token's context, so a stored
token resumes inside a loop exactly where it halted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import FlowRuntimeError
from ..patterns.controlflow import IF, IF_ELSE, WHILE
from ..runtime._time import parse_duration
from ._fanout import Fork, ForkEach, Join
from ._registry import TaskRegistry
from ._shape import execution_order, kind_of, names_in
from ._steps import (
    Call,
    Condition,
    ForNext,
    ForStart,
    Halt,
    LoopEnd,
    Place,
    Start,
    Task,
    WhileStart,
    WhileTest,
)
from ._validate import DefinitionLookup, body_of

__all__ = ["compile_body"]


class Compiler:
    """Turns one validated body into a callback tree."""

    def __init__(self, registry: TaskRegistry, definitions: DefinitionLookup | None) -> None:
        self.registry = registry
        self.definitions = definitions

    def flow(self, body: Mapping[str, Any], version: int | None) -> list[Any]:
        name = body["name"]
        return [Start(name, version), *self.steps(body["steps"], Place(name, ""))]

    def steps(self, steps: list[Any], block: Place) -> list[Any]:
        """Compile a list of steps; ``block`` is where they are (its name is not used)."""
        return [self.step(step, block) for step in execution_order(steps)]

    def step(self, step: Mapping[str, Any], block: Place) -> Any:
        build: Callable[[Mapping[str, Any], Place], Any]
        build = getattr(self, f"_{kind_of(step)}")
        return build(step, Place(block.flow, step["name"], block.scope, block.loops))

    def _task(self, step: Mapping[str, Any], place: Place) -> Any:
        limit = None
        if "time_limit" in step:
            limit = parse_duration(step["time_limit"], what="time_limit").total_seconds()
        task = Task(place, self.registry.get(step["task"]), step.get("params", {}), limit)
        if "retry" not in step:
            return task
        from ._waits import retried  # the runtime imports SQLAlchemy: only when a flow waits

        return retried(task, step["retry"])

    def _ask(self, step: Mapping[str, Any], place: Place) -> Any:
        from ._waits import ask_tasks

        return ask_tasks(place, step["ask"])

    def _sleep(self, step: Mapping[str, Any], place: Place) -> Any:
        from ._waits import sleep_tasks

        return sleep_tasks(place, step["sleep"])

    def _receive(self, step: Mapping[str, Any], place: Place) -> Any:
        from ._waits import receive_tasks

        return receive_tasks(place, step)

    def _if(self, step: Mapping[str, Any], place: Place) -> Any:
        test = Condition(place, step["if"])
        then = self.steps(step["then"], place)
        if "else" in step:
            return IF_ELSE(test, then, self.steps(step["else"], place))
        return IF(test, then)

    def _while(self, step: Mapping[str, Any], place: Place) -> Any:
        test = WhileTest(place, step["while"], step.get("max_iterations"))
        body = self.steps(step["do"], place.inside("while"))
        return [WhileStart(place), *WHILE(test, body), LoopEnd(place, None)]

    def _for_each(self, step: Mapping[str, Any], place: Place) -> Any:
        var = step["as"]
        body = self.steps(step["do"], place.inside("for_each"))
        if step.get("parallel"):
            fork = ForkEach(
                place,
                step["for_each"],
                var,
                body,
                names_in(step["do"]),
                step.get("max_concurrency"),
            )
            return [fork, Join(fork)]
        return [
            ForStart(place, step["for_each"]),
            *WHILE(ForNext(place, var, names_in(step["do"])), body),
            LoopEnd(place, var),
        ]

    def _parallel(self, step: Mapping[str, Any], place: Place) -> Any:
        branches = step["parallel"]
        fork = Fork(
            place,
            [self.steps(branch, place) for branch in branches],
            [names_in(branch) for branch in branches],
        )
        return [fork, Join(fork)]

    def _halt(self, step: Mapping[str, Any], place: Place) -> Any:
        return Halt(place, step["halt"] if isinstance(step["halt"], dict) else {})

    def _flow(self, step: Mapping[str, Any], place: Place) -> Any:
        if self.definitions is None:  # the validator reports it; this guards direct use
            raise FlowRuntimeError(f"step {place.name!r} calls a flow, but no definitions")
        body = body_of(self.definitions(step["flow"], step.get("version")))
        inner = Place(body["name"], "", (*place.scope, place.name), place.loops)
        return [Call(place, step.get("params", {})), *self.steps(body["steps"], inner)]


def compile_body(
    body: Mapping[str, Any],
    *,
    registry: TaskRegistry,
    definitions: DefinitionLookup | None = None,
    version: int | None = None,
) -> list[Any]:
    """Return the callback tree of a validated flow body."""
    return Compiler(registry, definitions).flow(body, version)
