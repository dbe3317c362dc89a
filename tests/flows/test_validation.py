"""Validation: every error at once, each naming the flow, the step and the JSON path."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflow.errors import (
    DefinitionDisabledError,
    FlowError,
    FlowValidationError,
    WorkflowDefinitionError,
)
from workflow.flows import TaskRegistry, load_flow, validate_flow


def errors_of(body: Any, registry: TaskRegistry, **kwargs: Any) -> list[str]:
    return [
        f"{e.step}|{e.path}|{e.message}" for e in validate_flow(body, registry=registry, **kwargs)
    ]


def test_a_valid_flow_has_no_errors(registry: TaskRegistry) -> None:
    body = {"name": "ok", "steps": [{"name": "a", "task": "echo", "params": {"x": 1}}]}
    assert validate_flow(body, registry=registry) == []


def test_every_error_is_reported_at_once_in_document_order(registry: TaskRegistry) -> None:
    body = {
        "name": "orders",
        "steps": [
            {"name": "load", "task": "ech", "params": {"x": "@later.value"}},
            {"name": "later", "task": "echo"},
            {"name": "load", "task": "echo"},
            {"name": "bad name", "task": "echo"},
        ],
    }
    with pytest.raises(FlowValidationError) as info:
        load_flow(body, registry=registry)
    error = info.value
    assert isinstance(error, WorkflowDefinitionError)
    assert [str(e) for e in error.errors] == [
        "flow 'orders', step 'load', at $.steps[0].task: unknown task 'ech' (did you mean 'echo'?)",
        "flow 'orders', step 'load', at $.steps[0].params.x: @later.value refers to step "
        "'later', which has not run yet here",
        "flow 'orders', step 'load', at $.steps[2].name: duplicate step name 'load' "
        "(first at $.steps[0].name)",
        "flow 'orders', step 'bad name', at $.steps[3].name: a step name starts with a letter "
        "and has only letters, digits, '_' and '-'",
    ]
    assert str(error).splitlines()[0] == "4 errors in flow 'orders':"
    assert error.workflow_name == "orders"
    restored = pickle.loads(pickle.dumps(error))
    assert restored.errors == error.errors


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([], "None|$|a flow must be a JSON object, not a list"),
        (
            {"steps": [{"name": "a", "task": "echo"}]},
            "None|$.name|a flow needs a non-empty string 'name'",
        ),
        ({"name": "f", "steps": []}, "None|$.steps|a flow needs a non-empty list of 'steps'"),
        (
            {"name": "f", "steps": [{"name": "a", "task": "echo"}], "colour": 1},
            "None|$.colour|unknown key 'colour'",
        ),
        (
            {"name": "f", "version": 0, "steps": [{"name": "a", "task": "echo"}]},
            "None|$.version|version must be a positive integer, got 0",
        ),
        (
            {"name": "f", "description": 3, "steps": [{"name": "a", "task": "echo"}]},
            "None|$.description|description must be a string",
        ),
        (
            {"name": "f", "steps": ["a"]},
            "None|$.steps[0]|a step must be a JSON object, not a string",
        ),
        (
            {"name": "f", "steps": [{"task": "echo"}]},
            "None|$.steps[0].name|a step needs a string 'name'",
        ),
        ({"name": "f", "steps": [{"name": "a"}]}, "a|$.steps[0]|a step needs one of the keys"),
        (
            {"name": "f", "steps": [{"name": "a", "task": "echo", "halt": True}]},
            "a|$.steps[0]|a step has exactly one kind, this one has 'task', 'halt'",
        ),
        (
            {"name": "f", "steps": [{"name": "a", "task": "echo", "then": []}]},
            "a|$.steps[0].then|unknown key 'then' for a task step",
        ),
        (
            {"name": "f", "steps": [{"name": "a", "task": 5}]},
            "a|$.steps[0].task|task must be a registered task name, not 5",
        ),
        (
            {"name": "f", "steps": [{"name": "a", "task": "echo", "params": [1]}]},
            "a|$.steps[0].params|params must be a JSON object, not a list",
        ),
        (
            {"name": "f", "steps": [{"name": "a", "task": "echo", "description": 1}]},
            "a|$.steps[0].description|description must be a string",
        ),
        (
            {"name": "f", "steps": [{"name": "a", "task": "echo", "params": {"x": "@nobody"}}]},
            "a|$.steps[0].params.x|@nobody refers to unknown step 'nobody'",
        ),
        (
            {"name": "f", "steps": [{"name": "a", "task": "echo", "params": {"x": "@a.v"}}]},
            "a|$.steps[0].params.x|@a.v refers to the step itself",
        ),
        (
            {"name": "f", "steps": [{"name": "a", "task": "echo", "params": {"x": "@a..v"}}]},
            "a|$.steps[0].params.x|'@a..v' is not a reference: names and keys cannot be empty",
        ),
        (
            {"name": "f", "steps": [{"name": "a", "task": "mark", "params": {"colour": 1}}]},
            "a|$.steps[0].params|task 'mark' cannot take these parameters",
        ),
        (
            {
                "name": "f",
                "steps": [
                    {"name": "a", "if": {"==": [1]}, "then": [{"name": "b", "task": "echo"}]}
                ],
            },
            "a|$.steps[0].if['==']|'==' takes a list of exactly two values",
        ),
        (
            {
                "name": "f",
                "steps": [
                    {
                        "name": "a",
                        "if": {"==": [1, 2], "!=": [1, 2]},
                        "then": [{"name": "b", "task": "echo"}],
                    }
                ],
            },
            "a|$.steps[0].if|a condition object has exactly one operator key",
        ),
        (
            {
                "name": "f",
                "steps": [
                    {"name": "a", "if": {"and": []}, "then": [{"name": "b", "task": "echo"}]}
                ],
            },
            "a|$.steps[0].if.and|'and' takes a non-empty list of conditions",
        ),
        (
            {
                "name": "f",
                "steps": [
                    {
                        "name": "a",
                        "if": {"not": {"xor": [1, 2]}},
                        "then": [{"name": "b", "task": "echo"}],
                    }
                ],
            },
            "a|$.steps[0].if.not|unknown condition operator 'xor'",
        ),
        (
            {"name": "f", "steps": [{"name": "a", "if": True}]},
            "a|$.steps[0].then|an if step needs a 'then' list of steps",
        ),
        (
            {
                "name": "f",
                "steps": [
                    {"name": "a", "if": True, "then": [{"name": "b", "task": "echo"}], "else": "no"}
                ],
            },
            "a|$.steps[0].else|'else' must be a non-empty list of steps",
        ),
        (
            {
                "name": "f",
                "steps": [
                    {"name": "a", "if": 1, "then": [{"name": "b", "task": "echo"}], "else": None}
                ],
            },
            "a|$.steps[0].else|'else' must be a non-empty list of steps",
        ),
        (
            {
                "name": "f",
                "steps": [
                    {
                        "name": "a",
                        "while": True,
                        "max_iterations": -1,
                        "do": [{"name": "b", "task": "echo"}],
                    }
                ],
            },
            "a|$.steps[0].max_iterations|must be a positive integer, got -1",
        ),
        (
            {
                "name": "f",
                "steps": [
                    {
                        "name": "a",
                        "for_each": "items",
                        "as": "x",
                        "do": [{"name": "b", "task": "echo"}],
                    }
                ],
            },
            "a|$.steps[0].for_each|for_each takes a reference (such as '@step.items'), one with",
        ),
        (
            {
                "name": "f",
                "steps": [{"name": "a", "for_each": [1], "do": [{"name": "b", "task": "echo"}]}],
            },
            "a|$.steps[0].as|for_each needs 'as', the loop variable's name",
        ),
        (
            {
                "name": "f",
                "steps": [
                    {"name": "a", "for_each": [1], "as": "b", "do": [{"name": "b", "task": "echo"}]}
                ],
            },
            "a|$.steps[0].as|loop variable 'b' is also a step's name",
        ),
        (
            {
                "name": "f",
                "steps": [
                    {
                        "name": "a",
                        "for_each": [1],
                        "as": "x",
                        "do": [{"name": "b", "task": "echo"}],
                    },
                    {"name": "c", "task": "echo", "params": {"v": "@x"}},
                ],
            },
            "c|$.steps[1].params.v|@x uses loop variable 'x' outside its loop",
        ),
        (
            {"name": "f", "steps": [{"name": "a", "parallel": []}]},
            "a|$.steps[0].parallel|parallel takes a non-empty list of branches",
        ),
        (
            {"name": "f", "steps": [{"name": "a", "parallel": [[]]}]},
            "a|$.steps[0].parallel[0]|a branch must be a non-empty list of steps",
        ),
        (
            {
                "name": "f",
                "steps": [
                    {
                        "name": "a",
                        "parallel": [
                            [{"name": "b", "task": "echo"}],
                            [{"name": "c", "task": "echo", "params": {"x": "@b"}}],
                        ],
                    }
                ],
            },
            "c|$.steps[0].parallel[1][0].params.x|@b refers to step 'b', which has not run yet",
        ),
        (
            {
                "name": "f",
                "steps": [
                    {"name": "a", "for_each": [1], "as": "x", "do": [], "max_concurrency": 2}
                ],
            },
            'a|$.steps[0].max_concurrency|only a parallel for_each ("parallel": true)',
        ),
        (
            {
                "name": "f",
                "steps": [
                    {
                        "name": "a",
                        "for_each": [1],
                        "as": "x",
                        "do": [],
                        "parallel": True,
                        "max_concurrency": 0,
                    }
                ],
            },
            "a|$.steps[0].max_concurrency|must be a positive integer, got 0",
        ),
        (
            {
                "name": "f",
                "steps": [{"name": "a", "for_each": [1], "as": "x", "do": [], "parallel": "yes"}],
            },
            "a|$.steps[0].parallel|must be true or false, got 'yes'",
        ),
        (
            {"name": "f", "steps": [{"name": "h", "halt": "now"}]},
            "h|$.steps[0].halt|halt takes an object (message, action, schema, default) or true",
        ),
        (
            {"name": "f", "steps": [{"name": "h", "halt": {"message": 1, "who": "x"}}]},
            "h|$.steps[0].halt.message|message must be a string",
        ),
        (
            {"name": "f", "steps": [{"name": "a", "task": "echo", "needs": "b"}]},
            "a|$.steps[0].needs|needs must be a list of step names, not a string",
        ),
        (
            {"name": "f", "steps": [{"name": "a", "task": "echo", "needs": ["a"]}]},
            "a|$.steps[0].needs[0]|a step cannot need itself",
        ),
        (
            {"name": "f", "steps": [{"name": "a", "task": "echo", "needs": ["zz"]}]},
            "a|$.steps[0].needs[0]|needs 'zz', which is not a step of this list",
        ),
        (
            {
                "name": "f",
                "steps": [
                    {"name": "b", "task": "echo"},
                    {"name": "a", "task": "echo", "needs": ["b", "b"]},
                ],
            },
            "a|$.steps[1].needs[1]|'b' is needed twice",
        ),
        (
            {"name": "f", "steps": [{"name": "a", "task": "echo", "needs": [3]}]},
            "a|$.steps[0].needs[0]|needs names steps by string, not a int",
        ),
        (
            {"name": "f", "steps": [{"name": "a", "flow": "child", "version": "2"}]},
            "a|$.steps[0].version|version must be a positive integer",
        ),
        (
            {"name": "f", "steps": [{"name": "a", "flow": ""}]},
            "a|$.steps[0].flow|flow names a stored flow by string",
        ),
        (
            {"name": "f", "steps": [{"name": "a", "flow": "child"}]},
            "a|$.steps[0].flow|cannot check flow 'child': no stored definitions",
        ),
    ],
)
def test_each_problem_is_named_with_its_step_and_path(
    registry: TaskRegistry, body: Any, expected: str
) -> None:
    found = errors_of(body, registry)
    assert any(line.startswith(expected) for line in found), found


def test_a_cycle_of_needs_is_named_in_full(registry: TaskRegistry) -> None:
    body = {
        "name": "dag",
        "steps": [
            {"name": "a", "task": "echo", "needs": ["c"]},
            {"name": "b", "task": "echo", "needs": ["a"]},
            {"name": "c", "task": "echo", "needs": ["b"]},
            {"name": "d", "task": "echo"},
        ],
    }
    assert errors_of(body, registry) == ["a|$.steps[0].needs|needs form a cycle: a -> c -> b -> a"]


def test_needs_must_name_a_sibling(registry: TaskRegistry) -> None:
    body = {
        "name": "f",
        "steps": [
            {"name": "a", "if": True, "then": [{"name": "inner", "task": "echo"}]},
            {"name": "b", "task": "echo", "needs": ["inner"]},
        ],
    }
    assert errors_of(body, registry) == [
        "b|$.steps[1].needs[0]|needs 'inner', which is not a step of this list in another list"
    ]


def test_references_follow_the_dag_order_not_the_written_order(registry: TaskRegistry) -> None:
    body = {
        "name": "f",
        "steps": [
            {"name": "report", "task": "echo", "params": {"x": "@fetch"}, "needs": ["fetch"]},
            {"name": "fetch", "task": "echo"},
        ],
    }
    assert errors_of(body, registry) == []


def test_called_flows_are_checked_and_call_cycles_named(registry: TaskRegistry) -> None:
    stored = {
        "child": {"name": "child", "steps": [{"name": "x", "task": "nope"}]},
        "loop": {"name": "loop", "steps": [{"name": "back", "flow": "parent"}]},
    }

    def definitions(name: str, version: int | None) -> dict[str, Any]:
        if name == "off":
            raise DefinitionDisabledError("every version of 'off' is disabled")
        if name not in stored:
            raise LookupError(f"no flow {name!r}")
        return stored[name]

    body = {
        "name": "parent",
        "steps": [
            {"name": "a", "flow": "child"},
            {"name": "b", "flow": "loop"},
            {"name": "c", "flow": "ghost"},
            {"name": "d", "flow": "off"},
        ],
    }
    assert errors_of(body, registry, definitions=definitions) == [
        "a|$.steps[0].flow|called flow is invalid: flow 'child', step 'x', at $.steps[0].task: "
        "unknown task 'nope'",
        "b|$.steps[1].flow|called flow is invalid: flow 'loop', step 'back', at $.steps[0].flow: "
        "flows call each other in a cycle: parent -> loop -> parent",
        "c|$.steps[2].flow|unknown flow 'ghost': no flow 'ghost'",
        "d|$.steps[3].flow|flow 'off' cannot be called: every version of 'off' is disabled",
    ]


def test_the_flow_framework_format_is_translated_and_its_errors_point_into_it(
    registry: TaskRegistry,
) -> None:
    body = {
        "procedures": [
            {"name": "step1", "mod": "common", "method": "echo", "params": {"msg": "hi"}},
            {"name": "step2", "mod": "x", "method": "y"},
            {"name": "step3", "method": "echo", "extra": 1},
            "junk",
        ],
        "other": 1,
    }
    assert errors_of(body, registry) == [
        "None|$.other|unknown key 'other' (allowed: description, name, procedures)",
        "step3|$.procedures[2].extra|unknown key 'extra' (allowed: method, mod, name, params)",
        "step3|$.procedures[2].mod|a procedure needs a non-empty string 'mod' (its task is "
        "mod.method)",
        "None|$.procedures[3]|a procedure must be a JSON object",
    ]
    body = {"procedures": [{"name": "s", "mod": "x", "method": "y"}]}
    assert errors_of(body, registry) == ["s|$.procedures[0].mod|unknown task 'x.y'"]
    assert errors_of({"procedures": []}, registry) == [
        "None|$.procedures|procedures must be a non-empty list"
    ]


def test_a_bad_procedure_method_is_reported_at_its_method(registry: TaskRegistry) -> None:
    registry.register("common.echo", print)
    body = {
        "procedures": [
            {"name": "a", "mod": "common", "method": "ech"},
            {"name": "b", "mod": "commn", "method": "echo"},
        ]
    }
    assert errors_of(body, registry) == [
        "a|$.procedures[0].method|unknown task 'common.ech' (did you mean 'common.echo'?)",
        "b|$.procedures[1].mod|unknown task 'commn.echo' (did you mean 'common.echo'?)",
    ]
    body = {
        "procedures": [
            {"name": "c", "mod": "common", "method": 5},
            {"name": "d", "mod": "common"},
            {"name": "e", "mod": "", "method": ""},
        ]
    }
    assert errors_of(body, registry) == [
        "c|$.procedures[0].method|a procedure needs a non-empty string 'method' (its task is "
        "mod.method)",
        "d|$.procedures[1].method|a procedure needs a non-empty string 'method' (its task is "
        "mod.method)",
        "e|$.procedures[2].mod|a procedure needs a non-empty string 'mod' (its task is mod.method)",
        "e|$.procedures[2].method|a procedure needs a non-empty string 'method' (its task is "
        "mod.method)",
    ]


def test_flow_files_are_read_as_json_or_yaml(registry: TaskRegistry, tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(
        json.dumps({"name": "a", "steps": [{"name": "s", "task": "echo"}]})
    )
    (tmp_path / "b.yaml").write_text("name: b\nsteps:\n  - name: s\n    task: echo\n")
    (tmp_path / "two_step.json").write_text(
        json.dumps({"procedures": [{"name": "s", "mod": "ec", "method": "ho"}]})
    )
    registry.register("ec.ho", print)
    assert load_flow(tmp_path / "a.json", registry=registry).name == "a"
    assert load_flow(str(tmp_path / "b.yaml"), registry=registry).name == "b"
    framework = load_flow(tmp_path / "two_step.json", registry=registry)
    assert framework.name == "two_step"
    assert framework.body["steps"] == [{"name": "s", "task": "ec.ho"}]


@pytest.mark.parametrize(
    ("filename", "text", "message"),
    [
        (
            "bad.json",
            '{"name": "x",\n "steps": [}',
            "is not valid JSON: Expecting value (line 2, column 12)",
        ),
        ("bad.yaml", "name: x\nsteps: [\n", "is not valid YAML"),
        ("missing.json", None, "cannot read"),
    ],
)
def test_unreadable_files_raise_a_validation_error_naming_the_file(
    registry: TaskRegistry, tmp_path: Path, filename: str, text: str | None, message: str
) -> None:
    path = tmp_path / filename
    if text is not None:
        path.write_text(text)
    with pytest.raises(FlowValidationError) as info:
        load_flow(path, registry=registry)
    (error,) = info.value.errors
    assert error.path == "$"
    assert str(path) in error.message
    assert message in error.message


# -- property-based: the validator never fails with anything but our error ---------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
words = st.sampled_from(
    [
        "name",
        "steps",
        "task",
        "params",
        "if",
        "then",
        "else",
        "while",
        "do",
        "for_each",
        "as",
        "parallel",
        "halt",
        "flow",
        "needs",
        "version",
        "max_iterations",
        "message",
        "procedures",
        "mod",
        "method",
        "==",
        "<",
        "in",
        "not",
        "and",
        "or",
        "@a",
        "@a.b",
        "@_input",
        "@@x",
        "a",
        "b",
        "echo",
        "mark",
        "@",
        "@b..c",
    ]
)
flowish = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 3) | words,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(words, children, max_size=5),
    max_leaves=30,
)

VALID = {
    "name": "sample",
    "steps": [
        {"name": "a", "task": "echo", "params": {"x": "@_input"}},
        {
            "name": "b",
            "if": {"and": [{"==": ["@a.x", 1]}, {"not": "@a"}]},
            "then": [{"name": "c", "task": "mark", "params": {"label": "@a.x"}}],
            "else": [{"name": "d", "halt": {"message": "m", "action": "review"}}],
        },
        {
            "name": "e",
            "for_each": "@a.items",
            "as": "item",
            "do": [{"name": "f", "task": "echo", "params": {"i": "@item"}}],
        },
        {
            "name": "g",
            "while": {"<": ["@h.n", 3]},
            "max_iterations": 5,
            "do": [{"name": "h", "task": "echo"}],
        },
        {
            "name": "p",
            "parallel": [[{"name": "p1", "task": "echo"}], [{"name": "p2", "task": "echo"}]],
        },
        {"name": "z", "task": "echo", "needs": ["y"]},
        {"name": "y", "task": "echo"},
    ],
}


def _mutate(body: Any, data: st.DataObject) -> Any:
    """Replace one value somewhere in ``body`` by a random one."""
    if isinstance(body, dict) and body:
        key = data.draw(st.sampled_from(sorted(body)))
        if data.draw(st.booleans()):
            body[key] = data.draw(flowish)
        else:
            body[key] = _mutate(body[key], data)
    elif isinstance(body, list) and body:
        index = data.draw(st.integers(0, len(body) - 1))
        if data.draw(st.booleans()):
            body[index] = data.draw(flowish)
        else:
            body[index] = _mutate(body[index], data)
    else:
        return data.draw(flowish)
    return body


FIXTURE_OK = [HealthCheck.function_scoped_fixture]  # the registry fixture holds no state


def _only_our_error(body: Any, registry: TaskRegistry) -> None:
    try:
        flow = load_flow(body, registry=registry)
    except FlowValidationError as exc:
        errors = exc.errors
        message = str(exc)
    else:
        flow.callbacks()  # a flow that validates also compiles
        flow.graph("mermaid")
        flow.graph("dot")
        return
    assert errors
    assert all(isinstance(e, FlowError) and e.path.startswith("$") for e in errors)
    assert message.startswith(f"{len(errors)} error")


def test_the_sample_used_for_mutations_is_valid(registry: TaskRegistry) -> None:
    assert validate_flow(VALID, registry=registry) == []


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.one_of(json_values, flowish))
def test_random_definitions_fail_only_with_a_validation_error(
    registry: TaskRegistry, body: Any
) -> None:
    _only_our_error(body, registry)


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_definitions_fail_only_with_a_validation_error(
    registry: TaskRegistry, data: st.DataObject
) -> None:
    body = copy.deepcopy(VALID)
    for _ in range(data.draw(st.integers(1, 3))):
        body = _mutate(body, data)
    _only_our_error(body, registry)
