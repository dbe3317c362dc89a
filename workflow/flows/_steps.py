"""The tasks a flow compiles to, one kind per step kind.

Each knows its :class:`Place`: the flow, the step, the scope its results go
to and the loops around it, so that every error and halt names the step and,
inside a loop, the round it happened in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..errors import FlowRuntimeError, StorageError, WorkflowTransition
from ._refs import Lookup, ResolveError, compile_condition, compile_value
from ._registry import RegisteredTask
from ._resume import HALT, LOOPS, context_of, scope_at

__all__ = [
    "Call",
    "Condition",
    "ForNext",
    "ForStart",
    "Halt",
    "Loop",
    "LoopEnd",
    "Place",
    "Start",
    "Task",
    "WhileStart",
    "WhileTest",
]


@dataclass(frozen=True)
class Loop:
    """A loop around a step: its kind (``for_each`` or ``while``), name and scope."""

    kind: str
    name: str
    scope: tuple[str, ...]

    def round(self, root: dict[str, Any]) -> str | None:
        """Return which round the loop is in for the context ``root``, or ``None``."""
        try:
            state = scope_at(root, self.scope)[LOOPS][self.name]
        except (KeyError, TypeError):
            return None
        if self.kind == "for_each":
            return f"item {state['index']} of {self.name!r}"
        return f"round {state['iterations']} of {self.name!r}"


@dataclass(frozen=True)
class Place:
    """Where a compiled step is: its flow, its name, its scope and the loops around it."""

    flow: str
    name: str
    scope: tuple[str, ...] = ()
    loops: tuple[Loop, ...] = ()

    def rounds(self, root: dict[str, Any]) -> str:
        """Return the rounds of the loops around the step, outermost first (``""`` outside)."""
        return ", ".join(filter(None, (loop.round(root) for loop in self.loops)))

    def inside(self, kind: str) -> Place:
        """Return the place of the steps inside this loop step."""
        return Place(
            self.flow, self.name, self.scope, (*self.loops, Loop(kind, self.name, self.scope))
        )


class _Step:
    """What every compiled step knows: its place, and how to fail naming it."""

    def __init__(self, place: Place) -> None:
        self.place = place
        self.name = place.name
        self.__name__ = place.name
        self.__qualname__ = place.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.place.flow}.{self.name}>"

    def lookup(self, obj: Any) -> Lookup:
        root = context_of(obj)
        return Lookup(root, scope_at(root, self.place.scope))

    def resolve(self, value: Callable[[Lookup], Any], lookup: Lookup) -> Any:
        """Return ``value(lookup)``, a reference that cannot resolve failing this step."""
        try:
            return value(lookup)
        except ResolveError as exc:
            raise self.fail(str(exc), lookup.root) from None

    def items(self, source: Callable[[Lookup], Any], lookup: Lookup) -> list[Any]:
        """Return the list a ``for_each`` loops over, failing this step when it is none."""
        items = self.resolve(source, lookup)
        if not isinstance(items, list):
            message = f"for_each needs a list, got {type(items).__name__} {items!r}"
            raise self.fail(message, lookup.root)
        return items

    def fail(self, message: str, root: dict[str, Any]) -> FlowRuntimeError:
        """Return the error of this step: ``flow 'f', step 's'[, item 2 of 'loop']: message``."""
        rounds = self.place.rounds(root)
        where = f"flow {self.place.flow!r}, step {self.name!r}" + (f", {rounds}" if rounds else "")
        return FlowRuntimeError(f"{where}: {message}", task=self.name)


class Task(_Step):
    """A ``task`` step: resolve the parameters, call the task, store its result.

    An exception of the task becomes a :class:`~workflow.errors.FlowRuntimeError`
    naming the step (and the round), caused by the task's exception; the
    engine's transitions and storage errors go through as they are.
    """

    def __init__(
        self, place: Place, entry: RegisteredTask, params: Any, time_limit: float | None = None
    ) -> None:
        super().__init__(place)
        self.entry = entry
        self.params = compile_value(params)
        #: Seconds after which an attempt is interrupted (``time_limit``), if any.
        self.time_limit = time_limit

    def __call__(self, obj: Any, eng: Any) -> None:
        try:
            self.attempt(obj, eng)
        except (WorkflowTransition, StorageError, FlowRuntimeError):
            raise
        except Exception as exc:
            raise self.fail(f"{type(exc).__name__}: {exc}", context_of(obj)) from exc

    def attempt(self, obj: Any, eng: Any) -> None:
        """Call the task once and store its result; the task's own exception goes through.

        What a ``retry`` tries again. A reference without a value, or a
        result that is not a dict, fails with :class:`FlowRuntimeError`.
        """
        lookup = self.lookup(obj)
        params = self.resolve(self.params, lookup)
        if self.time_limit is None:
            lookup.scope[self.name] = self._call(obj, eng, lookup, params)
            return
        from ..runtime._limits import call_with_time_limit

        limit, name = self.time_limit, self.entry.name
        result = call_with_time_limit(limit, self._call, obj, eng, lookup, params, name=name)
        lookup.scope[self.name] = result

    def _call(self, obj: Any, eng: Any, lookup: Lookup, params: Any) -> Any:
        entry = self.entry
        if entry.style == "context":
            result = entry.function(lookup.scope, params)
            if result is None:
                return {}
            if not isinstance(result, dict):
                raise self.fail(
                    f"task {entry.name!r} returned {type(result).__name__} {result!r}; "
                    "a flow task returns a dict (or None)",
                    lookup.root,
                )
            return result
        result = entry.function(obj, eng, **params)
        return {} if result is None else result


class Condition(_Step):
    """The test of an ``if`` or ``while`` step; an ``if`` records the branch it took."""

    def __init__(self, place: Place, spec: Any) -> None:
        super().__init__(place)
        self.decide = compile_condition(spec)

    def test(self, lookup: Lookup) -> bool:
        return bool(self.resolve(self.decide, lookup))

    def __call__(self, obj: Any, eng: Any) -> bool:
        lookup = self.lookup(obj)
        truth = self.test(lookup)
        lookup.scope[self.name] = {"branch": "then" if truth else "else"}
        return truth


class WhileStart(_Step):
    traced = False  # bookkeeping of the flow, not a step of its own

    def __call__(self, obj: Any, eng: Any) -> None:
        self.lookup(obj).scope.setdefault(LOOPS, {})[self.name] = {"iterations": 0}


class WhileTest(Condition):
    """The test of a ``while`` step; the body's steps read as ``None`` before they first run."""

    def __init__(self, place: Place, spec: Any, limit: int | None) -> None:
        super().__init__(place, spec)
        self.limit = limit

    def __call__(self, obj: Any, eng: Any) -> bool:
        lookup = self.lookup(obj)
        if not self.test(lookup):
            return False
        state = lookup.scope[LOOPS][self.name]
        if self.limit is not None and state["iterations"] >= self.limit:
            raise self.fail(f"the loop did not end within max_iterations={self.limit}", lookup.root)
        state["iterations"] += 1
        return True


class LoopEnd(_Step):
    """Leave a loop: its state becomes the step's result."""

    traced = False  # bookkeeping of the flow, not a step of its own

    def __init__(self, place: Place, var: str | None) -> None:
        super().__init__(place)
        self.var = var

    def __call__(self, obj: Any, eng: Any) -> None:
        scope = self.lookup(obj).scope
        loops = scope[LOOPS]
        state = loops.pop(self.name)
        if not loops:
            del scope[LOOPS]
        if self.var is None:
            scope[self.name] = {"iterations": state["iterations"]}
        else:
            scope.pop(self.var, None)
            scope[self.name] = state["results"]


class ForStart(_Step):
    traced = False  # bookkeeping of the flow, not a step of its own

    def __init__(self, place: Place, source: Any) -> None:
        super().__init__(place)
        self.source = compile_value(source)

    def __call__(self, obj: Any, eng: Any) -> None:
        lookup = self.lookup(obj)
        items = self.items(self.source, lookup)
        state = {"items": items, "index": -1, "results": []}
        lookup.scope.setdefault(LOOPS, {})[self.name] = state


class ForNext(_Step):
    """The test of a ``for_each`` step: keep the last round's results, bind the next item."""

    def __init__(self, place: Place, var: str, body: list[str]) -> None:
        super().__init__(place)
        self.var = var
        self.body = body

    def __call__(self, obj: Any, eng: Any) -> bool:
        scope = self.lookup(obj).scope
        state = scope[LOOPS][self.name]
        if state["index"] >= 0:
            state["results"].append({name: scope.pop(name) for name in self.body if name in scope})
        state["index"] += 1
        if state["index"] >= len(state["items"]):
            return False
        scope[self.var] = state["items"][state["index"]]
        return True


class Halt(_Step):
    """Halt for somebody; :func:`~workflow.flows.apply_resume_data` records the answer.

    The engines resume after the task that halted, so this task halts each
    time it runs (in every round of a loop); an answer from an earlier round
    is removed first, so that a resume without data never passes it on.
    Inside a loop, the message names the round. The marker it leaves holds
    what the answer is checked against (``schema``) and its ``default``.
    """

    def __init__(self, place: Place, spec: dict[str, Any]) -> None:
        super().__init__(place)
        self.message = spec.get("message") or f"halted at step {self.name!r}"
        self.action = spec.get("action")
        self.answer: dict[str, Any] = {k: spec[k] for k in ("schema", "default") if k in spec}

    def __call__(self, obj: Any, eng: Any) -> None:
        lookup = self.lookup(obj)
        lookup.scope.pop(self.name, None)
        rounds = self.place.rounds(lookup.root)
        message = f"{self.message} ({rounds})" if rounds else self.message
        marker: dict[str, Any] = {
            "step": self.name,
            "scope": list(self.place.scope),
            "message": message,
            "action": self.action,
            **self.answer,
        }
        if rounds:
            marker["round"] = rounds
        lookup.root[HALT] = marker
        eng.halt(message, action=self.action, payload={"step": self.name})


class Call(_Step):
    """Enter a called flow: its ``_input`` is this step's parameters."""

    traced = False  # bookkeeping of the flow, not a step of its own

    def __init__(self, place: Place, params: Any) -> None:
        super().__init__(place)
        self.params = compile_value(params)

    def __call__(self, obj: Any, eng: Any) -> None:
        lookup = self.lookup(obj)
        params = self.resolve(self.params, lookup)
        lookup.scope[self.name] = {"_input": params}


class Start(_Step):
    """The first task of a flow: fill ``_runtime`` once per token."""

    traced = False  # bookkeeping of the flow, not a step of its own

    def __init__(self, flow: str, version: int | None) -> None:
        super().__init__(Place(flow, "_start"))
        self.version = version

    def __call__(self, obj: Any, eng: Any) -> None:
        root = context_of(obj)
        if "_runtime" not in root:
            root["_runtime"] = {
                "run_id": getattr(eng, "uuid", None),
                "flow": self.place.flow,
                "version": self.version,
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
