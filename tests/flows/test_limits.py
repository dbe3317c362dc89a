"""Flows past the documented limits are refused as invalid, never with a crash."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workflow.errors import FlowValidationError
from workflow.flows import (
    MAX_DOCUMENT_DEPTH,
    MAX_DOCUMENT_VALUES,
    MAX_FILE_BYTES,
    MAX_NESTING,
    MAX_STEPS,
    MAX_VALUE_DEPTH,
    TaskRegistry,
    load_flow,
)
from workflow.flows._limits import MAX_HINTS

from .conftest import run


@pytest.fixture
def low_recursion_limit() -> Iterator[None]:
    """Run with a recursion limit of 400: input within the limits needs far less."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    yield
    sys.setrecursionlimit(before)


def nested_steps(depth: int, kind: str = "if") -> dict[str, Any]:
    """A flow whose one step holds steps ``depth`` levels deep (the top step is level 1)."""
    step: dict[str, Any] = {"name": "s1", "task": "echo", "params": {"x": "@_input"}}
    for level in range(2, depth + 1):
        name = f"s{level}"
        if kind == "if":
            step = {"name": name, "if": True, "then": [step]}
        elif kind == "parallel":
            step = {"name": name, "parallel": [[step]]}
        else:
            step = {"name": name, "for_each": [1], "as": f"v{level}", "do": [step]}
    return {"name": "deep", "steps": [step]}


def nested_value(depth: int) -> Any:
    """A JSON value of ``depth`` nested containers, lists and objects in turn."""
    value: Any = "@_input"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def chain(length: int) -> dict[str, Any]:
    """A flow of ``length`` steps, each needing the next one written."""
    steps: list[dict[str, Any]] = [
        {"name": f"s{i}", "task": "echo", "needs": [f"s{i + 1}"]} for i in range(length - 1)
    ]
    steps.append({"name": f"s{length - 1}", "task": "echo"})
    return {"name": "chain", "steps": steps}


def depth_of(path: str) -> int:
    """Return how deep the value at a JSON path is: the document itself is at depth 1."""
    return 1 + len(re.findall(r"\.\w+|\[\d+\]", path))


def last_step_above(body: Any, path: str) -> str | None:
    """Return the name of the last step on the way to ``path``, the value there excluded."""
    name = None
    value = body
    for key in re.findall(r"\.(\w+)|\[(\d+)\]", path)[:-1]:
        value = value[key[0]] if key[0] else value[int(key[1])]
        if isinstance(value, dict) and "name" in value and value is not body:
            name = value["name"]
    return name


def only_error(body: Any, registry: TaskRegistry, **kwargs: Any) -> tuple[str | None, str, str]:
    with pytest.raises(FlowValidationError) as info:
        load_flow(body, registry=registry, **kwargs)
    (error,) = info.value.errors
    return error.step, error.path, error.message


def test_the_limits_leave_room_for_each_other() -> None:
    # A step at the deepest nesting (parallel branches take three levels) with
    # parameters at the deepest value depth stays within the document depth.
    assert 3 * MAX_NESTING + MAX_VALUE_DEPTH + 2 <= MAX_DOCUMENT_DEPTH
    assert MAX_STEPS < MAX_DOCUMENT_VALUES


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, MAX_NESTING + 3])
def test_steps_nested_past_the_limit_are_reported_at_the_list_too_deep(
    registry: TaskRegistry, depth: int
) -> None:
    step, path, message = only_error(nested_steps(depth), registry)
    assert step == f"s{depth - MAX_NESTING + 1}"  # the step at the deepest level allowed
    assert path == "$.steps[0]" + ".then[0]" * (MAX_NESTING - 1) + ".then"
    assert message == f"steps are nested more than {MAX_NESTING} levels deep"


@pytest.mark.parametrize(("depth", "kind"), [(300, "if"), (600, "if"), (300, "parallel")])
def test_steps_nested_hundreds_deep_are_refused_by_the_document_depth(
    registry: TaskRegistry, depth: int, kind: str
) -> None:
    step, path, message = only_error(nested_steps(depth, kind), registry)
    assert message == f"the document is nested more than {MAX_DOCUMENT_DEPTH} levels deep"
    assert path.startswith("$.steps[0].then[0]" if kind == "if" else "$.steps[0].parallel[0]")
    assert depth_of(path) == MAX_DOCUMENT_DEPTH + 1
    assert step == last_step_above(nested_steps(depth, kind), path)


@pytest.mark.parametrize("kind", ["if", "parallel", "for_each"])
def test_a_flow_at_the_nesting_limit_validates_compiles_draws_and_runs(
    registry: TaskRegistry, kind: str, low_recursion_limit: None
) -> None:
    flow = load_flow(nested_steps(MAX_NESTING, kind), registry=registry)
    assert flow.graph().count("<br/>echo") == 1
    assert flow.graph("dot").count("echo") == 1
    (context,) = run(flow, 7)
    if kind == "if":
        assert context["s1"] == {"x": 7}
    else:
        assert "s1" in json.dumps(context)


def test_calls_count_towards_the_nesting_of_the_calling_flow(registry: TaskRegistry) -> None:
    inner = nested_steps(MAX_NESTING - 1)
    outer = {"name": "outer", "steps": [{"name": "call", "flow": "inner"}]}
    assert load_flow(outer, registry=registry, definitions=lambda name, version: inner)
    wrapped = {"name": "wrap", "if": True, "then": [{"name": "call", "flow": "inner"}]}
    step, path, message = only_error(
        {"name": "outer", "steps": [wrapped]},
        registry,
        definitions=lambda name, version: inner,
    )
    assert (step, path) == ("call", "$.steps[0].then[0].flow")
    assert message.startswith("called flow is invalid: ")
    assert f"steps are nested more than {MAX_NESTING} levels deep" in message


def test_a_needs_chain_of_the_most_steps_allowed_is_ordered(
    registry: TaskRegistry, low_recursion_limit: None
) -> None:
    flow = load_flow(chain(MAX_STEPS), registry=registry)
    (context,) = run(flow)
    assert list(context)[2:4] == [f"s{MAX_STEPS - 1}", f"s{MAX_STEPS - 2}"]
    assert flow.graph().count(" --> ") == MAX_STEPS + 1


def test_a_long_needs_cycle_is_reported_once(
    registry: TaskRegistry, low_recursion_limit: None
) -> None:
    body = chain(520)
    body["steps"][-1]["needs"] = ["s0"]
    step, path, message = only_error(body, registry)
    assert (step, path) == ("s0", "$.steps[0].needs")
    assert message.startswith("needs form a cycle: s0 -> s1 -> s2 -> ")
    assert message.endswith(" -> s519 -> s0")


def test_more_steps_than_the_limit_are_refused(registry: TaskRegistry) -> None:
    body = {
        "name": "big",
        "steps": [
            {"name": "loop", "for_each": [1], "as": "x", "do": chain(MAX_STEPS)["steps"]},
        ],
    }
    step, path, message = only_error(body, registry)
    assert (step, path) == (None, "$.steps")
    assert message == f"the flow has {MAX_STEPS + 1} steps; at most {MAX_STEPS} are allowed"


def test_calls_count_towards_the_steps_of_the_calling_flow(registry: TaskRegistry) -> None:
    inner = chain(MAX_STEPS // 2)
    outer = {
        "name": "outer",
        "steps": [{"name": f"call{i}", "flow": "inner"} for i in range(3)],
    }
    with pytest.raises(FlowValidationError) as info:
        load_flow(outer, registry=registry, definitions=lambda name, version: inner)
    # 3 + 500 steps fit, 3 + 500 + 500 do not: each call past the limit is reported
    message = f"with the flows it calls, the flow has more than {MAX_STEPS} steps"
    assert [(e.step, e.path, e.message) for e in info.value.errors] == [
        ("call1", "$.steps[1].flow", message),
        ("call2", "$.steps[2].flow", message),
    ]


def test_a_called_flow_that_is_not_plain_data_is_invalid(registry: TaskRegistry) -> None:
    outer = {"name": "outer", "steps": [{"name": "call", "flow": "inner"}]}
    inner = {"name": "inner", "steps": "none", "when": {1, 2}}
    step, path, message = only_error(outer, registry, definitions=lambda name, version: inner)
    assert (step, path) == ("call", "$.steps[0].flow")
    assert message == ("called flow is invalid: flow 'inner', at $.when: a set is not a JSON value")
    inner = {"name": "inner", "steps": "none"}
    *_, message = only_error(outer, registry, definitions=lambda name, version: inner)
    assert message.endswith("a flow needs a non-empty list of 'steps'")


def test_calls_of_calls_cannot_multiply_past_the_step_limit(registry: TaskRegistry) -> None:
    # Ten flows, each calling the next ten times: 10**10 steps once compiled.
    def lookup(name: str, version: int | None) -> dict[str, Any]:
        level = int(name[1:])
        if level == 9:
            return {"name": name, "steps": [{"name": "t", "task": "echo"}]}
        calls = [{"name": f"c{i}", "flow": f"f{level + 1}"} for i in range(10)]
        return {"name": name, "steps": calls}

    with pytest.raises(FlowValidationError) as info:
        load_flow(lookup("f0", None), registry=registry, definitions=lookup)
    assert f"more than {MAX_STEPS} steps" in str(info.value)


@pytest.mark.parametrize("depth", [MAX_VALUE_DEPTH + 1, MAX_VALUE_DEPTH + 4])
def test_parameters_nested_past_the_limit_are_reported_at_their_key(
    registry: TaskRegistry, depth: int
) -> None:
    params = {"v": nested_value(depth - 1)}
    body = {"name": "p", "steps": [{"name": "s", "task": "echo", "params": params}]}
    step, path, message = only_error(body, registry)
    assert (step, path) == ("s", "$.steps[0].params")
    assert message == f"the value is nested more than {MAX_VALUE_DEPTH} levels deep"


def test_parameters_at_the_value_depth_limit_are_passed_on(registry: TaskRegistry) -> None:
    params = {"v": nested_value(MAX_VALUE_DEPTH - 1)}
    body = {"name": "p", "steps": [{"name": "s", "task": "echo", "params": params}]}
    (context,) = run(load_flow(body, registry=registry), "in")
    assert json.dumps(context["s"]).count("in") == 1


def test_conditions_nested_past_the_limit_are_reported_at_their_key(
    registry: TaskRegistry,
) -> None:
    condition: Any = "@_input"
    for _ in range(MAX_VALUE_DEPTH + 1):
        condition = {"not": condition}
    step = {"name": "w", "while": condition, "do": [{"name": "t", "task": "echo"}]}
    errors = only_error({"name": "c", "steps": [step]}, registry)
    assert errors == (
        "w",
        "$.steps[0].while",
        f"the value is nested more than {MAX_VALUE_DEPTH} levels deep",
    )


def test_python_input_nested_past_the_document_depth_is_refused(registry: TaskRegistry) -> None:
    body = {"name": "p", "steps": [{"name": "s", "task": "echo", "params": nested_value(5000)}]}
    step, path, message = only_error(body, registry)
    assert step == "s"
    assert path.startswith("$.steps[0].params[0].k[0].k[0]")
    assert message == f"the document is nested more than {MAX_DOCUMENT_DEPTH} levels deep"


def test_python_input_that_contains_itself_is_refused(registry: TaskRegistry) -> None:
    params: dict[str, Any] = {}
    params["self"] = params
    body = {"name": "p", "steps": [{"name": "s", "task": "echo", "params": params}]}
    *_, message = only_error(body, registry)
    assert message == f"the document is nested more than {MAX_DOCUMENT_DEPTH} levels deep"


def test_python_input_sharing_values_counts_every_use(registry: TaskRegistry) -> None:
    shared: Any = [0] * 10
    for _ in range(9):
        shared = [shared] * 10  # 10**10 values when written out
    body = {"name": "p", "steps": [{"name": "s", "task": "echo", "params": {"x": shared}}]}
    step, path, message = only_error(body, registry)
    assert (step, path) == (None, "$")
    assert message == f"the document has more than {MAX_DOCUMENT_VALUES} values"


def test_values_json_cannot_hold_are_refused_at_their_path(registry: TaskRegistry) -> None:
    body = {"name": "p", "steps": [{"name": "s", "task": "echo", "params": {"x": {1, 2}}}]}
    step, path, message = only_error(body, registry)
    assert (step, path) == ("s", "$.steps[0].params.x")
    assert message == "a set is not a JSON value"


# -- files ---------------------------------------------------------------------------------


def test_a_file_larger_than_the_limit_is_not_read(registry: TaskRegistry, tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text(" " * MAX_FILE_BYTES + "{}")
    step, error_path, message = only_error(path, registry)
    assert (step, error_path) == (None, "$")
    assert message == f"{path} is larger than {MAX_FILE_BYTES} bytes, the most a flow file may have"


def test_a_json_file_nested_past_any_limit_is_refused(
    registry: TaskRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    *_, message = only_error(path, registry)
    assert message == f"{path} is nested too deeply to read"


def test_a_deep_json_file_is_reported_at_the_limit(registry: TaskRegistry, tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(nested_steps(300)))
    step, error_path, message = only_error(path, registry)
    assert depth_of(error_path) == MAX_DOCUMENT_DEPTH + 1
    assert step == last_step_above(nested_steps(300), error_path)
    assert message == f"the document is nested more than {MAX_DOCUMENT_DEPTH} levels deep"


#: The classic "billion laughs": 579 bytes that expand to 387,420,489 strings.
ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
    "name: bomb\n"
    "steps: [{name: s, task: echo, params: {x: *i}}]\n"
)


def test_a_yaml_alias_bomb_is_refused_at_its_first_alias(
    registry: TaskRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    step, error_path, message = only_error(path, registry)
    assert (step, error_path) == (None, "$")
    assert message == (
        f"{path} is not valid YAML: flow files cannot use aliases (*name); "
        "write the value out (line 2, column 8)"
    )


def test_yaml_anchors_alone_are_harmless(registry: TaskRegistry, tmp_path: Path) -> None:
    path = tmp_path / "anchor.yaml"
    path.write_text("name: a\nsteps: &s [{name: s, task: echo}]\n")
    assert load_flow(path, registry=registry).body["steps"] == [{"name": "s", "task": "echo"}]


def test_a_yaml_file_nested_past_the_document_depth_is_refused(
    registry: TaskRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("x: " + "[" * 5000 + "]" * 5000 + "\n")
    step, error_path, message = only_error(path, registry)
    assert (step, error_path) == (None, "$")
    assert message == (
        f"{path} is not valid YAML: the document is nested more than "
        f"{MAX_DOCUMENT_DEPTH} levels deep (line 1, column {MAX_DOCUMENT_DEPTH + 3})"
    )


def test_yaml_dates_are_refused_where_they_stand(registry: TaskRegistry, tmp_path: Path) -> None:
    path = tmp_path / "date.yaml"
    path.write_text("name: d\nsteps: [{name: s, task: echo, params: {when: 2026-12-04}}]\n")
    step, error_path, message = only_error(path, registry)
    assert (step, error_path) == ("s", "$.steps[0].params.when")
    assert message == "a date is not a JSON value"


def test_only_the_first_errors_get_a_hint(registry: TaskRegistry) -> None:
    refs = [f"@load{i}" for i in range(MAX_HINTS + 50)]
    body = {
        "name": "hints",
        "steps": [
            {"name": "load", "task": "echo"},
            {"name": "use", "task": "echo", "params": {"refs": refs}},
        ],
    }
    with pytest.raises(FlowValidationError) as info:
        load_flow(body, registry=registry)
    hinted = [e for e in info.value.errors if e.message.endswith("(did you mean 'load'?)")]
    assert (len(info.value.errors), len(hinted)) == (MAX_HINTS + 50, MAX_HINTS)


def test_a_yaml_file_of_too_many_values_is_refused_while_it_is_read(
    registry: TaskRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "many.yaml"
    path.write_text("name: many\nsteps: [" + "1," * MAX_DOCUMENT_VALUES + "]\n")
    *_, message = only_error(path, registry)
    assert message.startswith(
        f"{path} is not valid YAML: the document has more than {MAX_DOCUMENT_VALUES} values"
    )


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_number_of_too_many_digits_is_a_parse_error(
    registry: TaskRegistry, tmp_path: Path, suffix: str
) -> None:
    path = (tmp_path / "digits").with_suffix(suffix)
    params = '{"x": ' + "1" * 5000 + "}"
    path.write_text(
        f'{{"name": "d", "steps": [{{"name": "s", "task": "echo", "params": {params}}}]}}'
    )
    step, error_path, message = only_error(path, registry)
    assert (step, error_path) == (None, "$")
    assert message.startswith(f"{path} is not valid {suffix[1:].upper()}: Exceeds the limit")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "nan is not a JSON value"),
        (float("-inf"), "-inf is not a JSON value"),
        (10**5000, "an integer this large cannot be written as JSON"),
    ],
    ids=["nan", "infinity", "huge"],
)
def test_numbers_json_cannot_hold_are_refused(
    registry: TaskRegistry, value: Any, message: str
) -> None:
    body = {"name": "p", "steps": [{"name": "s", "task": "echo", "params": {"x": value}}]}
    assert only_error(body, registry) == ("s", "$.steps[0].params.x", message)


def test_a_large_file_is_refused_even_when_the_limit_cuts_a_character(
    registry: TaskRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("x" * (MAX_FILE_BYTES - 1) + "é", encoding="utf-8")
    *_, message = only_error(path, registry)
    assert message == f"{path} is larger than {MAX_FILE_BYTES} bytes, the most a flow file may have"
