"""Answers with a shape (a halt step's ``schema`` and ``default``), references with a
default, and errors and halts that name their step and the round of their loop."""

from __future__ import annotations

import pickle
import subprocess
import sys
from typing import Any

import pytest

from workflow.engine import GenericWorkflowEngine
from workflow.errors import FlowAnswerError, FlowRuntimeError, HaltProcessing, WorkflowValueError
from workflow.flows import (
    MAX_SCHEMA_VALUES,
    FlowValidationError,
    TaskRegistry,
    apply_resume_data,
    halted_step,
    load_flow,
    schema,
    validate_flow,
)

from .conftest import run

APPROVAL = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "note": {"type": "string"}},
    "required": ["approved"],
}


def flow(registry: TaskRegistry, *steps: dict[str, Any]) -> Any:
    return load_flow({"name": "f", "steps": list(steps)}, registry=registry)


def halted(f: Any, data: Any = None) -> tuple[GenericWorkflowEngine, dict[str, Any]]:
    """Run ``f`` on one token until its first halt; return the engine and the context."""
    engine = GenericWorkflowEngine()
    engine.callbacks.replace(f.callbacks())
    context = f.new_context(data)
    with pytest.raises(HaltProcessing):
        engine.process([context])
    return engine, context


def approval(registry: TaskRegistry, **halt: Any) -> Any:
    return flow(
        registry,
        {"name": "approval", "halt": {"schema": APPROVAL, **halt}},
        {"name": "use", "task": "echo", "params": {"ok": "@approval.approved"}},
    )


# -- answers with a shape ----------------------------------------------------------------


def test_an_answer_that_does_not_match_the_schema_is_refused_and_nothing_recorded(
    registry: TaskRegistry,
) -> None:
    _, context = halted(approval(registry))
    with pytest.raises(FlowAnswerError) as info:
        apply_resume_data(context, {"approved": "yes"})
    assert str(info.value) == (
        "the answer for step 'approval' does not match its schema: "
        "at $.approved: 'yes' is not of type 'boolean'"
    )
    assert (info.value.step, info.value.path) == ("approval", "$.approved")
    assert isinstance(info.value, WorkflowValueError)
    assert halted_step(context) is not None
    assert "approval" not in context
    with pytest.raises(FlowAnswerError, match=r"at \$: 'approved' is a required property"):
        apply_resume_data(context, {"note": "fine"})
    copy = pickle.loads(pickle.dumps(info.value))
    assert (str(copy), copy.step, copy.path) == (str(info.value), "approval", "$.approved")


def test_an_answer_that_matches_is_recorded(registry: TaskRegistry) -> None:
    engine, context = halted(approval(registry))
    apply_resume_data(context, {"approved": True, "note": "ok"})
    engine.restart("current", "next")
    assert context["use"] == {"ok": True}


def test_no_answer_takes_the_default_and_null_is_an_answer_without_one(
    registry: TaskRegistry,
) -> None:
    engine, context = halted(approval(registry, default={"approved": False}))
    apply_resume_data(context)
    engine.restart("current", "next")
    assert context["approval"] == {"approved": False}
    assert context["use"] == {"ok": False}

    _, context = halted(approval(registry))  # no default: None is the answer, and is checked
    with pytest.raises(FlowAnswerError, match="None is not of type 'object'"):
        apply_resume_data(context, None)
    f = flow(registry, {"name": "ask", "halt": {"default": 3}})
    engine, context = halted(f)
    apply_resume_data(context)
    assert context["ask"] == 3


def test_the_default_is_a_copy(registry: TaskRegistry) -> None:
    f = flow(registry, {"name": "ask", "halt": {"default": {"tags": []}}})
    _, first = halted(f)
    _, second = halted(f)
    apply_resume_data(first)
    first["ask"]["tags"].append("x")
    apply_resume_data(second)
    assert second["ask"] == {"tags": []}


@pytest.mark.parametrize(
    ("halt", "path", "message"),
    [
        ({"schema": "object"}, "$.steps[0].halt.schema", "a schema is a JSON object"),
        ({"schema": {"type": "thing"}}, "$.steps[0].halt.schema.type", "not a valid JSON Schema"),
        (
            {"schema": {"$ref": "https://example.org/s.json"}},
            "$.steps[0].halt.schema['$ref']",
            "points outside the schema",
        ),
        (
            {"schema": {"$schema": "http://json-schema.org/draft-04/schema#"}},
            "$.steps[0].halt.schema['$schema']",
            "draft 2020-12",
        ),
        (
            {"schema": {"type": "integer"}, "default": "none"},
            "$.steps[0].halt.default",
            "the default does not match the schema: 'none' is not of type 'integer'",
        ),
        (
            {"schema": {"enum": list(range(MAX_SCHEMA_VALUES))}},
            "$.steps[0].halt.schema",
            f"at most {MAX_SCHEMA_VALUES} values",
        ),
        ({"answer": 1}, "$.steps[0].halt.answer", "allowed: action, default, message, schema"),
        ({"schema": {"$ref": "#/$defs/none"}}, "$.steps[0].halt.schema", "cannot check answers"),
        ({"schema": {"$ref": "#"}}, "$.steps[0].halt.schema", "cannot check answers"),
    ],
)
def test_a_bad_schema_or_default_is_a_validation_error_naming_the_step(
    registry: TaskRegistry, halt: dict[str, Any], path: str, message: str
) -> None:
    errors = validate_flow(
        {"name": "f", "steps": [{"name": "ask", "halt": halt}]}, registry=registry
    )
    assert [(e.step, e.path) for e in errors] == [("ask", path)]
    assert message in errors[0].message


def test_schema_true_and_local_references_are_fine(registry: TaskRegistry) -> None:
    local = {"$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n"}
    f = flow(
        registry, {"name": "a", "halt": {"schema": True}}, {"name": "b", "halt": {"schema": local}}
    )
    engine, context = halted(f)
    apply_resume_data(context, "anything")
    with pytest.raises(HaltProcessing):
        engine.restart("current", "next")
    with pytest.raises(FlowAnswerError, match="'two' is not of type 'integer'"):
        apply_resume_data(context, "two")
    apply_resume_data(context, 2)


def test_the_flow_schema_accepts_answer_schemas_and_references_with_a_default() -> None:
    import jsonschema

    maybe = {"ref": "@_input.items", "default": []}
    body = {
        "name": "f",
        "steps": [
            {"name": "a", "halt": {"schema": APPROVAL, "default": {}}},
            {
                "name": "b",
                "if": {"ref": "@a.approved", "default": False},
                "then": [
                    {"name": "c", "for_each": maybe, "as": "i", "do": [{"name": "d", "task": "t"}]}
                ],
            },
        ],
    }
    jsonschema.validate(body, schema())
    body["steps"][1]["if"] = {"ref": "@a.approved", "default": False, "other": 1}
    assert not jsonschema.Draft202012Validator(schema()).is_valid(body)


def test_flows_without_a_schema_never_import_jsonschema(tmp_path: Any) -> None:
    code = """
import sys
from workflow.flows import TaskRegistry, apply_resume_data, load_flow
registry = TaskRegistry(entry_point_group=None)
flow = load_flow({"name": "f", "steps": [{"name": "a", "halt": {"default": 1}}]}, registry=registry)
context = {"_halt": {"step": "a", "scope": [], "default": 1}}
apply_resume_data(context)
assert context == {"a": 1}, context
print("jsonschema" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert done.stdout == "False\n"


def test_without_jsonschema_a_flow_with_a_schema_names_the_extra(tmp_path: Any) -> None:
    """Only a flow with a schema imports jsonschema; without it, its error names the extra."""
    code = """
import sys
sys.modules["jsonschema"] = None  # as if it were not installed
from workflow.flows import TaskRegistry, validate_flow
registry = TaskRegistry(entry_point_group=None)
plain = {"name": "f", "steps": [{"name": "a", "halt": {"default": 1}}]}
assert validate_flow(plain, registry=registry) == []
shaped = {"name": "f", "steps": [{"name": "a", "halt": {"schema": {"type": "integer"}}}]}
for error in validate_flow(shaped, registry=registry):
    print(error)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert done.stdout == (
        "flow 'f', step 'a', at $.steps[0].halt.schema: a schema needs the jsonschema package: "
        "pip install 'workflow-ng[schema]'\n"
    )


# -- references with a default ------------------------------------------------------------


def test_a_reference_with_a_default_takes_it_when_the_value_is_missing(
    registry: TaskRegistry,
) -> None:
    f = flow(
        registry,
        {"name": "answer", "task": "echo", "params": {"approved": True, "gone": None}},
        {
            "name": "use",
            "task": "echo",
            "params": {
                "note": {"ref": "@answer.note", "default": ""},
                "approved": {"ref": "@answer.approved", "default": False},
                "gone": {"ref": "@answer.gone", "default": "x"},
                "deep": {"ref": "@answer.approved.deeper", "default": 0},
                "item": {"ref": "@_input.list.5", "default": "@answer.approved"},
                "literal": {"ref": "@@answer.note", "default": 1},
                "plain": {"ref": "@answer.note", "default": 1, "other": 2},
            },
        },
    )
    # "plain" has a third key: an ordinary object whose "@answer.note" must resolve.
    with pytest.raises(FlowRuntimeError, match="answer has no key 'note'"):
        run(f, {"list": [1]})
    del f.body["steps"][1]["params"]["plain"]
    f = load_flow(f.body, registry=registry)
    assert run(f, {"list": [1]})[0]["use"] == {
        "note": "",
        "approved": True,
        "gone": None,
        "deep": 0,
        "item": True,
        "literal": {"ref": "@answer.note", "default": 1},
    }


def test_a_reference_with_a_default_in_conditions_and_for_each(registry: TaskRegistry) -> None:
    f = flow(
        registry,
        {
            "name": "check",
            "if": {"ref": "@_input.urgent", "default": False},
            "then": [{"name": "page", "task": "echo"}],
        },
        {
            "name": "each",
            "for_each": {"ref": "@_input.items", "default": ["a"]},
            "as": "item",
            "do": [{"name": "got", "task": "echo", "params": {"it": "@item"}}],
        },
        {
            "name": "cmp",
            "if": {"==": [{"ref": "@_input.n", "default": 0}, 0]},
            "then": [{"name": "zero", "task": "echo"}],
        },
    )
    context = run(f, {})[0]
    assert context["check"] == {"branch": "else"}
    assert context["each"] == [{"got": {"it": "a"}}]
    assert context["cmp"] == {"branch": "then"}


def test_a_reference_with_a_default_is_validated(registry: TaskRegistry) -> None:
    errors = validate_flow(
        {
            "name": "f",
            "steps": [
                {
                    "name": "a",
                    "task": "echo",
                    "params": {"x": {"ref": "@nope.key", "default": "@also_nope"}},
                },
                {
                    "name": "b",
                    "for_each": {"ref": "@", "default": []},
                    "as": "i",
                    "do": [{"name": "c", "task": "echo"}],
                },
            ],
        },
        registry=registry,
    )
    assert [(e.path, e.message.split(" refers")[0]) for e in errors] == [
        ("$.steps[0].params.x.ref", "@nope.key"),
        ("$.steps[0].params.x.default", "@also_nope"),
        ("$.steps[1].for_each.ref", "'@' is not a reference: names and keys cannot be empty"),
    ]


# -- errors and halts name their step and round ------------------------------------------


def _boom(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    if params.get("n") == 2:
        raise KeyError("no such thing")
    return {}


def test_a_task_error_names_the_step_and_the_item_of_its_loop(registry: TaskRegistry) -> None:
    registry.register("boom", _boom)
    f = flow(
        registry,
        {
            "name": "lines",
            "for_each": [1, 2, 3],
            "as": "n",
            "do": [{"name": "check", "task": "boom", "params": {"n": "@n"}}],
        },
    )
    with pytest.raises(FlowRuntimeError) as info:
        run(f)
    assert str(info.value) == (
        "flow 'f', step 'check', item 1 of 'lines': KeyError: 'no such thing' (task 'check')"
    )
    assert isinstance(info.value.__cause__, KeyError)


def test_nested_loops_and_while_rounds_are_named_outermost_first(registry: TaskRegistry) -> None:
    registry.register("boom", _boom)
    f = flow(
        registry,
        {
            "name": "outer",
            "for_each": ["a", "b"],
            "as": "letter",
            "do": [
                {
                    "name": "spin",
                    "while": {"!=": [{"ref": "@tick.left", "default": 3}, 0]},
                    "do": [
                        {"name": "tick", "task": "count_down", "params": {"start": 3}},
                        {"name": "check", "task": "boom", "params": {"n": "@tick.left"}},
                    ],
                }
            ],
        },
    )
    with pytest.raises(
        FlowRuntimeError, match=r"step 'check', item 0 of 'outer', round 1 of 'spin': KeyError"
    ):
        run(f)


def test_a_reference_error_in_a_loop_names_the_round(registry: TaskRegistry) -> None:
    f = flow(
        registry,
        {
            "name": "rows",
            "for_each": [{"id": 1}, {"other": 2}],
            "as": "row",
            "do": [{"name": "show", "task": "echo", "params": {"id": "@row.id"}}],
        },
    )
    with pytest.raises(
        FlowRuntimeError, match=r"step 'show', item 1 of 'rows': @row.id: row has no key"
    ):
        run(f)


def test_a_halt_in_a_loop_says_which_round_it_waits_in(registry: TaskRegistry) -> None:
    f = flow(
        registry,
        {
            "name": "lines",
            "for_each": [1, 2],
            "as": "n",
            "do": [{"name": "ask", "halt": {"message": "ok?"}}],
        },
    )
    engine, context = halted(f)
    assert halted_step(context) == {
        "step": "ask",
        "message": "ok? (item 0 of 'lines')",
        "action": None,
        "round": "item 0 of 'lines'",
    }
    apply_resume_data(context, True)
    with pytest.raises(HaltProcessing, match=r"ok\? \(item 1 of 'lines'\)"):
        engine.restart("current", "next")


def test_engine_transitions_from_a_task_are_not_wrapped(registry: TaskRegistry) -> None:
    def stop_here(obj: Any, eng: Any) -> None:
        eng.halt("from the task")

    registry.register("stop_here", stop_here, style="engine")
    f = flow(registry, {"name": "s", "task": "stop_here"})
    with pytest.raises(HaltProcessing, match="from the task"):
        run(f)


def test_validation_error_for_a_bad_answer_schema_lists_with_the_others(
    registry: TaskRegistry,
) -> None:
    with pytest.raises(FlowValidationError, match=r"\$.steps\[1\].halt.schema"):
        flow(registry, {"name": "a", "task": "echo"}, {"name": "b", "halt": {"schema": []}})
