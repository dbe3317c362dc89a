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
from datetime import datetime, timezone
from typing import Any

from ..errors import FlowRuntimeError, WorkflowValueError
from ..patterns.controlflow import IF, IF_ELSE, PARALLEL_SPLIT, WHILE
from ._refs import Lookup, ResolveError, compile_condition, compile_value
from ._registry import RegisteredTask, TaskRegistry
from ._shape import execution_order, kind_of, names_in
from ._validate import DefinitionLookup, body_of

__all__ = ["apply_resume_data", "compile_body", "context_of", "halted_step"]

#: Where loops keep their state inside a scope, and where a halt leaves its marker.
LOOPS = "_loops"
HALT = "_halt"


def context_of(obj: Any) -> dict[str, Any]:
    """Return the context of a flow's token: the token itself, or its ``data``.

    A flow's tokens are context dicts; the persistent engine wraps each in a
    :class:`~workflow.storage.Token` whose ``data`` is the dict.

    :raises FlowRuntimeError: when ``obj`` holds no context dict.

    .. versionadded:: 3.0
    """
    if type(obj) is dict:
        return obj
    data = getattr(obj, "data", None)
    if isinstance(data, dict):
        return data
    raise FlowRuntimeError(
        f"a flow's token must be a context dict (see Flow.new_context), "
        f"not {type(obj).__name__} {obj!r}"
    )


def halted_step(context: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return ``{"step", "message", "action"}`` of the halt step the token waits at, or ``None``.

    .. versionadded:: 3.0
    """
    marker = context.get(HALT)
    if not isinstance(marker, dict):
        return None
    return {key: marker.get(key) for key in ("step", "message", "action")}


def apply_resume_data(context: dict[str, Any], data: Any) -> None:
    """Record ``data`` as the result of the halt step the token waits at.

    Steps after the halt step then read it as ``@<halt step>`` and
    ``@<halt step>.key``. Call it on a halted token's context before
    resuming the run.

    :raises ValueError: when the token does not wait at a halt step.

    .. versionadded:: 3.0
    """
    marker = context.get(HALT)
    if not isinstance(marker, dict):
        raise WorkflowValueError(
            "this token does not wait at a halt step, so it takes no resume data"
        )
    _scope(context, marker.get("scope", ()))[marker["step"]] = data
    del context[HALT]


def _scope(root: dict[str, Any], path: tuple[str, ...] | list[str]) -> dict[str, Any]:
    scope = root
    for key in path:
        scope = scope[key]
    return scope


class _Step:
    """What every compiled step knows: its flow, its name and where its results go."""

    def __init__(self, flow: str, name: str, scope: tuple[str, ...]) -> None:
        self.flow = flow
        self.name = name
        self.scope = scope
        self.__name__ = name
        self.__qualname__ = name

    def __repr__(self) -> str:
        return f"<{type(self).__name__.lstrip('_')} {self.flow}.{self.name}>"

    def lookup(self, obj: Any) -> Lookup:
        root = context_of(obj)
        scope = root
        for key in self.scope:
            scope = scope[key]
        return Lookup(root, scope)

    def resolve(self, value: Callable[[Lookup], Any], lookup: Lookup) -> Any:
        """Return ``value(lookup)``, a reference that cannot resolve failing this step."""
        try:
            return value(lookup)
        except ResolveError as exc:
            raise self.fail(str(exc)) from None

    def fail(self, message: str) -> FlowRuntimeError:
        return FlowRuntimeError(
            f"flow {self.flow!r}, step {self.name!r}: {message}", task=self.name
        )


class _Task(_Step):
    """A ``task`` step: resolve the parameters, call the task, store its result."""

    def __init__(
        self, flow: str, name: str, scope: tuple[str, ...], entry: RegisteredTask, params: Any
    ) -> None:
        super().__init__(flow, name, scope)
        self.entry = entry
        self.params = compile_value(params)

    def __call__(self, obj: Any, eng: Any) -> None:
        lookup = self.lookup(obj)
        params = self.resolve(self.params, lookup)
        entry = self.entry
        if entry.style == "context":
            result = entry.function(lookup.scope, params)
            if result is None:
                result = {}
            elif not isinstance(result, dict):
                raise self.fail(
                    f"task {entry.name!r} returned {type(result).__name__} {result!r}; "
                    "a flow task returns a dict (or None)"
                )
        else:
            result = entry.function(obj, eng, **params)
            if result is None:
                result = {}
        lookup.scope[self.name] = result


class _Condition(_Step):
    """The test of an ``if`` or ``while`` step; an ``if`` records the branch it took."""

    def __init__(self, flow: str, name: str, scope: tuple[str, ...], spec: Any) -> None:
        super().__init__(flow, name, scope)
        self.decide = compile_condition(spec)

    def test(self, lookup: Lookup) -> bool:
        return bool(self.resolve(self.decide, lookup))

    def __call__(self, obj: Any, eng: Any) -> bool:
        lookup = self.lookup(obj)
        truth = self.test(lookup)
        lookup.scope[self.name] = {"branch": "then" if truth else "else"}
        return truth


class _WhileStart(_Step):
    def __call__(self, obj: Any, eng: Any) -> None:
        self.lookup(obj).scope.setdefault(LOOPS, {})[self.name] = {"iterations": 0}


class _WhileTest(_Condition):
    """The test of a ``while`` step; the body's steps read as ``None`` before they first run."""

    def __init__(
        self, flow: str, name: str, scope: tuple[str, ...], spec: Any, limit: int | None
    ) -> None:
        super().__init__(flow, name, scope, spec)
        self.limit = limit

    def __call__(self, obj: Any, eng: Any) -> bool:
        lookup = self.lookup(obj)
        if not self.test(lookup):
            return False
        state = lookup.scope[LOOPS][self.name]
        if self.limit is not None and state["iterations"] >= self.limit:
            raise self.fail(f"the loop did not end within max_iterations={self.limit}")
        state["iterations"] += 1
        return True


class _LoopEnd(_Step):
    """Leave a loop: its state becomes the step's result."""

    def __init__(self, flow: str, name: str, scope: tuple[str, ...], var: str | None) -> None:
        super().__init__(flow, name, scope)
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


class _ForStart(_Step):
    def __init__(self, flow: str, name: str, scope: tuple[str, ...], source: Any) -> None:
        super().__init__(flow, name, scope)
        self.source = compile_value(source)

    def __call__(self, obj: Any, eng: Any) -> None:
        lookup = self.lookup(obj)
        items = self.resolve(self.source, lookup)
        if not isinstance(items, list):
            raise self.fail(f"for_each needs a list, got {type(items).__name__} {items!r}")
        state = {"items": items, "index": -1, "results": []}
        lookup.scope.setdefault(LOOPS, {})[self.name] = state


class _ForNext(_Step):
    """The test of a ``for_each`` step: keep the last round's results, bind the next item."""

    def __init__(
        self, flow: str, name: str, scope: tuple[str, ...], var: str, body: list[str]
    ) -> None:
        super().__init__(flow, name, scope)
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


class _Parallel(_Step):
    def __init__(self, flow: str, name: str, scope: tuple[str, ...], branches: list[Any]) -> None:
        super().__init__(flow, name, scope)
        self.count = len(branches)
        self.split = PARALLEL_SPLIT(*branches)

    def __call__(self, obj: Any, eng: Any) -> None:
        self.split(obj, eng)
        self.lookup(obj).scope[self.name] = {"branches": self.count}


class _Halt(_Step):
    """Halt for somebody; :func:`apply_resume_data` records the answer as the step's result.

    The engines resume after the task that halted, so this task halts each
    time it runs (in every round of a loop); an answer from an earlier round
    is removed first, so that a resume without data never passes it on.
    """

    def __init__(
        self, flow: str, name: str, scope: tuple[str, ...], message: str, action: str | None
    ) -> None:
        super().__init__(flow, name, scope)
        self.message = message
        self.action = action

    def __call__(self, obj: Any, eng: Any) -> None:
        lookup = self.lookup(obj)
        lookup.scope.pop(self.name, None)
        lookup.root[HALT] = {
            "step": self.name,
            "scope": list(self.scope),
            "message": self.message,
            "action": self.action,
        }
        eng.halt(self.message, action=self.action, payload={"step": self.name})


class _Call(_Step):
    """Enter a called flow: its ``_input`` is this step's parameters."""

    def __init__(self, flow: str, name: str, scope: tuple[str, ...], params: Any) -> None:
        super().__init__(flow, name, scope)
        self.params = compile_value(params)

    def __call__(self, obj: Any, eng: Any) -> None:
        lookup = self.lookup(obj)
        params = self.resolve(self.params, lookup)
        lookup.scope[self.name] = {"_input": params}


class _Start(_Step):
    """The first task of a flow: fill ``_runtime`` once per token."""

    def __init__(self, flow: str, version: int | None) -> None:
        super().__init__(flow, "_start", ())
        self.version = version

    def __call__(self, obj: Any, eng: Any) -> None:
        root = context_of(obj)
        if "_runtime" not in root:
            root["_runtime"] = {
                "run_id": getattr(eng, "uuid", None),
                "flow": self.flow,
                "version": self.version,
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }


class Compiler:
    """Turns one validated body into a callback tree."""

    def __init__(self, registry: TaskRegistry, definitions: DefinitionLookup | None) -> None:
        self.registry = registry
        self.definitions = definitions

    def flow(self, body: Mapping[str, Any], version: int | None) -> list[Any]:
        name = body["name"]
        return [_Start(name, version), *self.steps(name, body["steps"], ())]

    def steps(self, flow: str, steps: list[Any], scope: tuple[str, ...]) -> list[Any]:
        return [self.step(flow, step, scope) for step in execution_order(steps)]

    def step(self, flow: str, step: Mapping[str, Any], scope: tuple[str, ...]) -> Any:
        build: Callable[[str, Mapping[str, Any], tuple[str, ...]], Any]
        build = getattr(self, f"_{kind_of(step)}")
        return build(flow, step, scope)

    def _task(self, flow: str, step: Mapping[str, Any], scope: tuple[str, ...]) -> Any:
        entry = self.registry.get(step["task"])
        return _Task(flow, step["name"], scope, entry, step.get("params", {}))

    def _if(self, flow: str, step: Mapping[str, Any], scope: tuple[str, ...]) -> Any:
        test = _Condition(flow, step["name"], scope, step["if"])
        then = self.steps(flow, step["then"], scope)
        if "else" in step:
            return IF_ELSE(test, then, self.steps(flow, step["else"], scope))
        return IF(test, then)

    def _while(self, flow: str, step: Mapping[str, Any], scope: tuple[str, ...]) -> Any:
        name = step["name"]
        test = _WhileTest(flow, name, scope, step["while"], step.get("max_iterations"))
        body = self.steps(flow, step["do"], scope)
        return [
            _WhileStart(flow, name, scope),
            *WHILE(test, body),
            _LoopEnd(flow, name, scope, None),
        ]

    def _for_each(self, flow: str, step: Mapping[str, Any], scope: tuple[str, ...]) -> Any:
        name, var = step["name"], step["as"]
        body_names = names_in(step["do"])
        body = self.steps(flow, step["do"], scope)
        return [
            _ForStart(flow, name, scope, step["for_each"]),
            *WHILE(_ForNext(flow, name, scope, var, body_names), body),
            _LoopEnd(flow, name, scope, var),
        ]

    def _parallel(self, flow: str, step: Mapping[str, Any], scope: tuple[str, ...]) -> Any:
        branches = [self.steps(flow, branch, scope) for branch in step["parallel"]]
        return _Parallel(flow, step["name"], scope, branches)

    def _halt(self, flow: str, step: Mapping[str, Any], scope: tuple[str, ...]) -> Any:
        spec = step["halt"] if isinstance(step["halt"], dict) else {}
        message = spec.get("message") or f"halted at step {step['name']!r}"
        return _Halt(flow, step["name"], scope, message, spec.get("action"))

    def _flow(self, flow: str, step: Mapping[str, Any], scope: tuple[str, ...]) -> Any:
        if self.definitions is None:  # the validator reports it; this guards direct use
            raise FlowRuntimeError(f"step {step['name']!r} calls a flow, but no definitions")
        name = step["name"]
        body = body_of(self.definitions(step["flow"], step.get("version")))
        inner = (*scope, name)
        return [
            _Call(flow, name, scope, step.get("params", {})),
            *self.steps(body["name"], body["steps"], inner),
        ]


def compile_body(
    body: Mapping[str, Any],
    *,
    registry: TaskRegistry,
    definitions: DefinitionLookup | None = None,
    version: int | None = None,
) -> list[Any]:
    """Return the callback tree of a validated flow body."""
    return Compiler(registry, definitions).flow(body, version)
