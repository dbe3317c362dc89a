"""Validation of flow definitions: every error at once, each with flow, step and JSON path.

The validator walks plain JSON data and must never fail on it, whatever its
shape: every access checks the type first, and every problem becomes a
:class:`~workflow.errors.FlowError`.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import DefinitionDisabledError, FlowError
from ._answers import answer_spec_problems
from ._keys import key_problems
from ._limits import (
    MAX_NESTING,
    MAX_STEPS,
    MAX_VALUE_DEPTH,
    Budget,
    check_document,
    count_steps,
    key_path,
    value_depth,
)
from ._refs import COMPARISONS, LOGICAL, has_default, parse_reference, references_in
from ._registry import TaskRegistry
from ._schedules import schedule_problems
from ._shape import (
    COMMON_KEYS,
    FLOW_KEYS,
    KINDS,
    NAME_PATTERN,
    SYSTEM_NAMES,
    blocks,
    cycles,
    execution_order,
    kinds_in,
    names_in,
)
from ._wait_checks import (
    Checked,
    check_ask,
    check_receive,
    check_retry,
    check_sleep,
    check_time_limit,
)

__all__ = ["DefinitionLookup", "body_of", "validate_body", "version_of"]

#: ``definitions(name, version)`` returns a stored flow: its body, or an object
#: with ``body`` and ``version`` (a :class:`workflow.storage.Definition`), which
#: lets :func:`~workflow.flows.load_flow` pin the version a call uses. It
#: raises :exc:`LookupError` for an unknown flow.
DefinitionLookup = Callable[[str, "int | None"], Any]


def body_of(stored: Any) -> Any:
    """Return the body of what a :data:`DefinitionLookup` returned."""
    return stored.body if hasattr(stored, "body") else stored


def version_of(stored: Any) -> int | None:
    """Return the version of what a :data:`DefinitionLookup` returned, if it says."""
    version = getattr(stored, "version", None)
    return version if type(version) is int else None


#: The keys of a ``halt`` object.
_HALT_KEYS = ("action", "default", "message", "schema")

#: The keys of a step that hold other steps, not values.
_BLOCK_KEYS = frozenset({"then", "else", "do", "parallel"})


class _Scope:
    """The names a step's references may use: earlier steps and enclosing loop variables."""

    def __init__(self, visible: set[str], loop_vars: frozenset[str]) -> None:
        self.visible = visible
        self.loop_vars = loop_vars


class Validator:
    """Collects the errors of one flow body (and of the flows it calls)."""

    def __init__(
        self,
        name: str,
        registry: TaskRegistry,
        definitions: DefinitionLookup | None,
        *,
        calling: tuple[str, ...] = (),
        level: int = 0,
        budget: Budget | None = None,
        structure_only: bool = False,
    ) -> None:
        self.flow = name
        self.registry = registry
        self.definitions = definitions
        self.structure_only = structure_only  # neither tasks nor called flows are looked up
        self.calling = (*calling, name)
        self.level = level  # the nesting level of the list being checked
        self.budget = Budget() if budget is None else budget
        self.errors: list[FlowError] = []
        self.first_seen: dict[str, str] = {}
        self.loop_names: set[str] = set()
        self.all_names: set[str] = set()

    def error(self, step: str | None, path: str, message: str) -> None:
        self.errors.append(FlowError(self.flow, step, path, message))

    def _hint(self, name: str, known: Callable[[], Iterable[str]]) -> str:
        """Return `` (did you mean 'x'?)`` for a close ``known()`` name, for the first few errors.

        A close match costs about a millisecond among a thousand names, so a
        flow of a hundred thousand unknown names gets hints for the first
        ``MAX_HINTS`` only.
        """
        if self.budget.hints <= 0:
            return ""
        self.budget.hints -= 1
        close = difflib.get_close_matches(name, list(known()), n=1)
        return f" (did you mean {close[0]!r}?)" if close else ""

    # -- the flow ---------------------------------------------------------------

    def check(self, body: object) -> list[FlowError]:
        if not isinstance(body, dict):
            self.error(None, "$", f"a flow must be a JSON object, not {_type(body)}")
            return self.errors
        for key in body:
            if key not in FLOW_KEYS:
                allowed = ", ".join(sorted(FLOW_KEYS))
                self.error(None, key_path("$", key), f"unknown key {key!r} (allowed: {allowed})")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            self.error(None, "$.name", "a flow needs a non-empty string 'name'")
        version = body.get("version")
        if version is not None and not _positive_int(version):
            self.error(None, "$.version", f"version must be a positive integer, got {version!r}")
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            self.error(None, "$.description", "description must be a string")
        for path, message in key_problems(body):
            self.error(None, path, message)
        for path, message in schedule_problems(body):
            self.error(None, path, message)
        steps = body.get("steps")
        if not isinstance(steps, list) or not steps:
            self.error(None, "$.steps", "a flow needs a non-empty list of 'steps'")
            return self.errors
        if not self.calling[:-1]:  # the flow itself; a called flow is counted by its caller
            total = count_steps(steps)
            if total > MAX_STEPS:
                message = f"the flow has {total} steps; at most {MAX_STEPS} are allowed"
                self.error(None, "$.steps", message)
                return self.errors
            self.budget.left -= total
        self._collect_names(steps, "$.steps")
        self._nested(steps, "$.steps", None, _Scope(set(), frozenset()), in_parallel=False)
        return self.errors

    def _nested(
        self, steps: list[Any], path: str, name: str | None, scope: _Scope, *, in_parallel: bool
    ) -> None:
        """Check a list of steps one level deeper than the current one, within the limit."""
        if self.level >= MAX_NESTING:
            self.error(name, path, f"steps are nested more than {MAX_NESTING} levels deep")
            return
        self.level += 1
        try:
            self._check_list(steps, path, scope, in_parallel=in_parallel)
        finally:
            self.level -= 1

    # -- pass 1: names ----------------------------------------------------------

    def _collect_names(self, steps: list[Any], path: str) -> None:
        """Record every step name and loop variable, in document order, and the duplicates."""
        stack: list[tuple[str, list[Any]]] = [(path, steps)]
        while stack:
            where_list, block = stack.pop()
            nested: list[tuple[str, list[Any]]] = []
            for index, step in enumerate(block):
                if isinstance(step, dict):
                    self._collect_name(step, f"{where_list}[{index}]")
                    nested.extend(blocks(step, f"{where_list}[{index}]"))
            stack.extend(reversed(nested))

    def _collect_name(self, step: dict[str, Any], where: str) -> None:
        name = step.get("name")
        if isinstance(name, str) and NAME_PATTERN.match(name):
            if name in self.first_seen:
                self.error(
                    name,
                    f"{where}.name",
                    f"duplicate step name {name!r} (first at {self.first_seen[name]})",
                )
            else:
                self.first_seen[name] = f"{where}.name"
                self.all_names.add(name)
        var = step.get("as")
        if "for_each" in step and isinstance(var, str) and NAME_PATTERN.match(var):
            self.loop_names.add(var)

    # -- pass 2: shapes, order, references --------------------------------------

    def _check_list(self, steps: list[Any], path: str, scope: _Scope, *, in_parallel: bool) -> None:
        by_name: dict[str, int] = {}
        for index, step in enumerate(steps):
            if isinstance(step, dict) and isinstance(step.get("name"), str):
                by_name.setdefault(step["name"], index)
        self._check_needs(steps, path, by_name)
        positions = {id(step): index for index, step in enumerate(steps)}
        for step in execution_order(steps):
            index = positions[id(step)]
            self._check_step(step, f"{path}[{index}]", scope, in_parallel=in_parallel)

    def _check_needs(self, steps: list[Any], path: str, by_name: dict[str, int]) -> None:
        graph: dict[str, list[str]] = {}
        for index, step in enumerate(steps):
            if not isinstance(step, dict) or "needs" not in step:
                continue
            name = step.get("name") if isinstance(step.get("name"), str) else None
            where = f"{path}[{index}].needs"
            needs = step["needs"]
            if not isinstance(needs, list):
                self.error(name, where, f"needs must be a list of step names, not {_type(needs)}")
                continue
            for position, needed in enumerate(needs):
                at = f"{where}[{position}]"
                if not isinstance(needed, str):
                    self.error(name, at, f"needs names steps by string, not {_type(needed)}")
                elif needed == name:
                    self.error(name, at, "a step cannot need itself")
                elif needed not in by_name:
                    hint = self._hint(needed, lambda: by_name)
                    where_else = " in another list" if needed in self.all_names else ""
                    self.error(
                        name,
                        at,
                        f"needs {needed!r}, which is not a step of this list{where_else}{hint}",
                    )
                elif needs.index(needed) != position:
                    self.error(name, at, f"{needed!r} is needed twice")
            if name is not None:
                graph[name] = [n for n in needs if isinstance(n, str) and n in by_name]
        for cycle in cycles(graph, list(by_name)):
            first = cycle[0]
            self.error(
                first,
                f"{path}[{by_name[first]}].needs",
                "needs form a cycle: " + " -> ".join(cycle),
            )

    def _check_step(self, step: object, path: str, scope: _Scope, *, in_parallel: bool) -> None:
        if not isinstance(step, dict):
            self.error(None, path, f"a step must be a JSON object, not {_type(step)}")
            return
        raw_name = step.get("name")
        name = raw_name if isinstance(raw_name, str) else None
        if name is None:
            self.error(None, f"{path}.name", "a step needs a string 'name'")
        elif not NAME_PATTERN.match(name):
            self.error(
                name,
                f"{path}.name",
                "a step name starts with a letter and has only letters, digits, '_' and '-'",
            )
        elif name in self.loop_names:
            self.error(name, f"{path}.name", f"{name!r} is also a loop variable's name")
        description = step.get("description")
        if description is not None and not isinstance(description, str):
            self.error(name, f"{path}.description", "description must be a string")
        if self._values_fit(step, name, path):  # else checking them could recurse far
            self._check_kind(step, name, path, scope, in_parallel=in_parallel)
        if name is not None:
            scope.visible.add(name)

    def _values_fit(self, step: dict[str, Any], name: str | None, path: str) -> bool:
        """Report each value of ``step`` nested deeper than the limit; return whether none is."""
        fit = True
        for key, value in step.items():
            if key not in _BLOCK_KEYS and value_depth(value, MAX_VALUE_DEPTH) > MAX_VALUE_DEPTH:
                message = f"the value is nested more than {MAX_VALUE_DEPTH} levels deep"
                self.error(name, key_path(path, key), message)
                fit = False
        return fit

    def _check_kind(
        self, step: dict[str, Any], name: str | None, path: str, scope: _Scope, *, in_parallel: bool
    ) -> None:
        kinds = kinds_in(step)
        if not kinds:
            keys = ", ".join(repr(kind) for kind in KINDS)
            self.error(name, path, f"a step needs one of the keys {keys}")
        elif len(kinds) > 1:
            found = ", ".join(repr(kind) for kind in kinds)
            self.error(name, path, f"a step has exactly one kind, this one has {found}")
        else:
            kind = kinds[0]
            allowed = KINDS[kind] | COMMON_KEYS
            for key in step:
                if key in ("retry", "time_limit") and kind != "task":
                    message = f"{key} is for task steps only, not for a {kind} step"
                    self.error(name, key_path(path, key), message)
                elif key not in allowed:
                    self.error(
                        name,
                        key_path(path, key),
                        f"unknown key {key!r} for a {kind} step "
                        f"(allowed: {', '.join(sorted(allowed))})",
                    )
            getattr(self, f"_check_{kind}")(step, name, path, scope, in_parallel)

    def _check_task(
        self, step: dict[str, Any], name: str | None, path: str, scope: _Scope, _p: bool
    ) -> None:
        task = step["task"]
        params = step.get("params", {})
        if not isinstance(task, str) or not task:
            self.error(name, f"{path}.task", f"task must be a registered task name, not {task!r}")
        elif self.structure_only:
            pass
        elif task not in self.registry:
            hint = self._hint(task, self.registry.names)
            self.error(name, f"{path}.task", f"unknown task {task!r}{hint}")
        elif isinstance(params, dict):
            self._check_signature(task, params, name, path)
        self._check_params(params, name, f"{path}.params", scope)
        if "retry" in step:
            self._report(check_retry(step["retry"], f"{path}.retry"), name, scope)
        if "time_limit" in step:
            self._report(check_time_limit(step["time_limit"], f"{path}.time_limit"), name, scope)

    def _report(self, checked: Checked, name: str | None, scope: _Scope) -> None:
        """Report what checking a waiting step found, its references checked against ``scope``."""
        for at, message in checked.problems:
            self.error(name, at, message)
        for at, text in checked.references:
            self._check_ref(text, name, at, scope)

    def _check_ask(
        self, step: dict[str, Any], name: str | None, path: str, scope: _Scope, par: bool
    ) -> None:
        self._report(check_ask(step["ask"], f"{path}.ask"), name, scope)

    def _check_sleep(
        self, step: dict[str, Any], name: str | None, path: str, scope: _Scope, par: bool
    ) -> None:
        self._report(check_sleep(step["sleep"], f"{path}.sleep"), name, scope)

    def _check_receive(
        self, step: dict[str, Any], name: str | None, path: str, scope: _Scope, par: bool
    ) -> None:
        self._report(check_receive(step, path), name, scope)

    def _check_signature(
        self, task: str, params: dict[str, Any], name: str | None, path: str
    ) -> None:
        try:
            entry = self.registry.get(task)
        except (KeyError, ImportError) as exc:
            self.error(name, f"{path}.task", str(exc).strip("\"'"))
            return
        if entry.style != "engine":
            return
        try:
            signature = inspect.signature(entry.function)
        except (TypeError, ValueError):  # a builtin without a signature: nothing to check
            return
        keywords = {str(key): None for key in params}
        try:
            signature.bind(None, None, **keywords)
        except TypeError as exc:
            self.error(name, f"{path}.params", f"task {task!r} cannot take these parameters: {exc}")

    def _check_params(self, params: object, name: str | None, path: str, scope: _Scope) -> None:
        if not isinstance(params, dict):
            self.error(name, path, f"params must be a JSON object, not {_type(params)}")
            return
        for key in params:
            if not isinstance(key, str):
                self.error(name, key_path(path, key), "parameter names must be strings")
        self._check_refs(params, name, path, scope)

    def _check_refs(self, value: object, name: str | None, path: str, scope: _Scope) -> None:
        for where, text in references_in(value, path):
            self._check_ref(text, name, where, scope)

    def _check_ref(self, text: str, name: str | None, path: str, scope: _Scope) -> None:
        try:
            ref = parse_reference(text)
        except ValueError as exc:
            self.error(name, path, str(exc))
            return
        assert ref is not None
        target = ref.name
        if target in SYSTEM_NAMES or target in scope.visible or target in scope.loop_vars:
            return
        if target == name:
            self.error(name, path, f"{text} refers to the step itself")
        elif target in self.all_names:
            self.error(name, path, f"{text} refers to step {target!r}, which has not run yet here")
        elif target in self.loop_names:
            self.error(name, path, f"{text} uses loop variable {target!r} outside its loop")
        else:
            hint = self._hint(
                target, lambda: sorted(scope.visible | scope.loop_vars | SYSTEM_NAMES)
            )
            self.error(name, path, f"{text} refers to unknown step {target!r}{hint}")

    def _check_condition(self, cond: object, name: str | None, path: str, scope: _Scope) -> None:
        if not isinstance(cond, dict) or has_default(cond):
            self._check_refs(cond, name, path, scope)
            return
        if len(cond) != 1:
            ops = ", ".join(repr(op) for op in (*COMPARISONS, *LOGICAL))
            self.error(name, path, f"a condition object has exactly one operator key: {ops}")
            return
        ((op, args),) = cond.items()
        where = key_path(path, op)
        if op == "not":
            self._check_condition(args, name, where, scope)
        elif op in ("and", "or"):
            if not isinstance(args, list) or not args:
                self.error(name, where, f"{op!r} takes a non-empty list of conditions")
                return
            for index, item in enumerate(args):
                self._check_condition(item, name, f"{where}[{index}]", scope)
        elif op in COMPARISONS:
            if not isinstance(args, list) or len(args) != 2:
                self.error(name, where, f"{op!r} takes a list of exactly two values")
                return
            self._check_refs(args, name, where, scope)
        else:
            ops = ", ".join(repr(op) for op in (*COMPARISONS, *LOGICAL))
            self.error(name, path, f"unknown condition operator {op!r} (known: {ops})")

    def _check_block(
        self,
        step: dict[str, Any],
        key: str,
        name: str | None,
        path: str,
        scope: _Scope,
        in_parallel: bool,
        *,
        required: bool = True,
    ) -> None:
        if key not in step and not required:
            return
        block = step.get(key)
        if not isinstance(block, list) or (required and not block):
            self.error(name, f"{path}.{key}", f"{key!r} must be a non-empty list of steps")
            return
        self._nested(block, f"{path}.{key}", name, scope, in_parallel=in_parallel)

    def _check_if(
        self, step: dict[str, Any], name: str | None, path: str, scope: _Scope, par: bool
    ) -> None:
        self._check_condition(step["if"], name, f"{path}.if", scope)
        if "then" not in step:
            self.error(name, f"{path}.then", "an if step needs a 'then' list of steps")
        else:
            self._check_block(step, "then", name, path, scope, par)
        self._check_block(step, "else", name, path, scope, par, required=False)

    def _check_while(
        self, step: dict[str, Any], name: str | None, path: str, scope: _Scope, par: bool
    ) -> None:
        body = step.get("do")
        own = set(names_in(body)) if isinstance(body, list) else set()
        ahead = _Scope(scope.visible | own, scope.loop_vars)  # the body's last round
        self._check_condition(step["while"], name, f"{path}.while", ahead)
        limit = step.get("max_iterations")
        if limit is not None and not _positive_int(limit):
            self.error(name, f"{path}.max_iterations", f"must be a positive integer, got {limit!r}")
        self._check_block(step, "do", name, path, scope, par)

    def _check_for_each(
        self, step: dict[str, Any], name: str | None, path: str, scope: _Scope, par: bool
    ) -> None:
        source = step["for_each"]
        is_reference = isinstance(source, str) and source[:1] == "@" and source[:2] != "@@"
        if not is_reference and not isinstance(source, list) and not has_default(source):
            self.error(
                name,
                f"{path}.for_each",
                "for_each takes a reference (such as '@step.items'), one with a default "
                f"({{'ref': '@step.items', 'default': []}}) or a list, not {source!r}",
            )
        else:
            self._check_refs(source, name, f"{path}.for_each", scope)
        var = step.get("as")
        loop_vars = scope.loop_vars
        if not isinstance(var, str) or not NAME_PATTERN.match(var):
            self.error(name, f"{path}.as", "for_each needs 'as', the loop variable's name")
        elif var in self.all_names:
            self.error(name, f"{path}.as", f"loop variable {var!r} is also a step's name")
        else:
            loop_vars = loop_vars | {var}
        inner = _Scope(scope.visible, loop_vars)
        parallel = step.get("parallel", False)
        if not isinstance(parallel, bool):
            self.error(name, f"{path}.parallel", f"must be true or false, got {parallel!r}")
        limit = step.get("max_concurrency")
        if limit is not None:
            if not _positive_int(limit):
                message = f"must be a positive integer, got {limit!r}"
                self.error(name, f"{path}.max_concurrency", message)
            elif parallel is not True:
                message = 'only a parallel for_each ("parallel": true) takes max_concurrency'
                self.error(name, f"{path}.max_concurrency", message)
        self._check_block(step, "do", name, path, inner, par or parallel is True)

    def _check_parallel(
        self, step: dict[str, Any], name: str | None, path: str, scope: _Scope, _p: bool
    ) -> None:
        branches = step["parallel"]
        where = f"{path}.parallel"
        if not isinstance(branches, list) or not branches:
            self.error(name, where, "parallel takes a non-empty list of branches (lists of steps)")
            return
        seen: set[str] = set()
        for index, branch in enumerate(branches):
            if not isinstance(branch, list) or not branch:
                self.error(name, f"{where}[{index}]", "a branch must be a non-empty list of steps")
                continue
            inner = _Scope(set(scope.visible), scope.loop_vars)
            self._nested(branch, f"{where}[{index}]", name, inner, in_parallel=True)
            seen |= inner.visible - scope.visible
        scope.visible |= seen

    def _check_halt(
        self, step: dict[str, Any], name: str | None, path: str, scope: _Scope, par: bool
    ) -> None:
        spec = step["halt"]
        where = f"{path}.halt"
        if spec is True or spec == {}:
            return
        if not isinstance(spec, dict):
            self.error(
                name, where, "halt takes an object (message, action, schema, default) or true"
            )
            return
        for key, value in spec.items():
            if key not in _HALT_KEYS:
                allowed = ", ".join(_HALT_KEYS)
                self.error(name, key_path(where, key), f"unknown key {key!r} (allowed: {allowed})")
            elif key in ("message", "action") and not isinstance(value, str):
                self.error(name, key_path(where, key), f"{key} must be a string")
        for at, message in answer_spec_problems(spec, where):
            self.error(name, at, message)

    def _check_flow(
        self, step: dict[str, Any], name: str | None, path: str, scope: _Scope, _p: bool
    ) -> None:
        called = step["flow"]
        version = step.get("version")
        if version is not None and not _positive_int(version):
            self.error(
                name, f"{path}.version", f"version must be a positive integer, got {version!r}"
            )
            version = None
        self._check_params(step.get("params", {}), name, f"{path}.params", scope)
        if not isinstance(called, str) or not called:
            self.error(name, f"{path}.flow", "flow names a stored flow by string")
            return
        if called in self.calling:
            chain = " -> ".join((*self.calling, called))
            self.error(name, f"{path}.flow", f"flows call each other in a cycle: {chain}")
            return
        if self.structure_only:
            return
        if self.definitions is None:
            self.error(
                name,
                f"{path}.flow",
                f"cannot check flow {called!r}: no stored definitions to look it up in",
            )
            return
        try:
            body = body_of(self.definitions(called, version))
        except LookupError as exc:
            self.error(name, f"{path}.flow", f"unknown flow {called!r}: {exc}")
            return
        except DefinitionDisabledError as exc:
            self.error(name, f"{path}.flow", f"flow {called!r} cannot be called: {exc}")
            return
        steps = count_steps(body.get("steps") if isinstance(body, dict) else None)
        if steps > self.budget.left:
            message = f"with the flows it calls, the flow has more than {MAX_STEPS} steps"
            self.error(name, f"{path}.flow", message)
            return
        self.budget.left -= steps
        for problem in self._check_called(called, body):
            self.error(name, f"{path}.flow", f"called flow is invalid: {problem}")

    def _check_called(self, called: str, body: object) -> list[FlowError]:
        """Return the errors of a called flow, checked as one more level of the caller."""
        too_big = check_document(body, called)
        if too_big is not None:
            return [too_big]
        inner = Validator(
            called,
            self.registry,
            self.definitions,
            calling=self.calling,
            level=self.level,
            budget=self.budget,
        )
        return inner.check(body)


def validate_body(
    body: object,
    *,
    registry: TaskRegistry,
    definitions: DefinitionLookup | None = None,
    name: str | None = None,
    structure_only: bool = False,
) -> list[FlowError]:
    """Return every error of the flow ``body`` (in our format), in document order.

    :param structure_only: check the shape, the step names and the references,
        but look up neither the tasks in ``registry`` nor the called flows.
    """
    flow_name = name
    if flow_name is None:
        raw = body.get("name") if isinstance(body, dict) else None
        flow_name = raw if isinstance(raw, str) and raw else "<unnamed>"
    validator = Validator(flow_name, registry, definitions, structure_only=structure_only)
    errors = validator.check(body)
    return sorted(errors, key=_document_order)


def _document_order(error: FlowError) -> tuple[int, ...]:
    """Sort key: the list indices along the error's path (ties keep the order found)."""
    return tuple(int(index) for index in re.findall(r"\[(\d+)\]", error.path))


def _positive_int(value: object) -> bool:
    return type(value) is int and value >= 1


def _type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), f"a {type(value).__name__}")
