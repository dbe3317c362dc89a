"""What each construct of a flow does when it runs."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from workflow import signals
from workflow.engine import GenericWorkflowEngine
from workflow.errors import FlowRuntimeError, HaltProcessing
from workflow.flows import (
    TaskRegistry,
    apply_resume_data,
    context_of,
    halted_step,
    load_flow,
)

from .conftest import run


def flow(registry: TaskRegistry, *steps: dict[str, Any], **extra: Any) -> Any:
    return load_flow({"name": "f", "steps": list(steps), **extra}, registry=registry)


def test_results_are_stored_under_step_names_and_references_resolve(
    registry: TaskRegistry,
) -> None:
    f = flow(
        registry,
        {"name": "first", "task": "echo", "params": {"msg": "hello", "deep": {"list": [1, 2]}}},
        {
            "name": "second",
            "task": "echo",
            "params": {
                "whole": "@first",
                "msg": "@first.msg",
                "item": "@first.deep.list.1",
                "literal": "@@first",
                "nested": ["@_input.id", {"k": "@first.msg"}],
                "number": 3,
            },
        },
    )
    (context,) = run(f, {"id": 7})
    assert context["first"] == {"msg": "hello", "deep": {"list": [1, 2]}}
    assert context["second"] == {
        "whole": {"msg": "hello", "deep": {"list": [1, 2]}},
        "msg": "hello",
        "item": 2,
        "literal": "@first",
        "nested": [7, {"k": "hello"}],
        "number": 3,
    }
    assert context["_input"] == {"id": 7}


def test_runtime_names_the_flow_version_and_run(registry: TaskRegistry) -> None:
    f = load_flow(
        {
            "name": "f",
            "version": 4,
            "steps": [
                {
                    "name": "r",
                    "task": "echo",
                    "params": {"flow": "@_runtime.flow", "version": "@_runtime.version"},
                }
            ],
        },
        registry=registry,
    )
    (context,) = run(f)
    runtime = context["_runtime"]
    assert (runtime["run_id"], runtime["flow"], runtime["version"]) == (None, "f", 4)
    assert runtime["started"].endswith("+00:00")
    assert context["r"] == {"flow": "f", "version": 4}


def test_parameters_are_built_afresh_for_every_call(registry: TaskRegistry) -> None:
    seen: list[Any] = []

    def grab(context: dict[str, Any], params: dict[str, Any]) -> None:
        params["items"].append("changed")
        seen.append(params)

    registry.register("grab", grab)
    f = flow(registry, {"name": "g", "task": "grab", "params": {"items": [1]}})
    contexts = run(f, 1, 2)
    assert [params["items"] for params in seen] == [[1, "changed"], [1, "changed"]]
    assert [c["g"] for c in contexts] == [{}, {}]  # None is stored as an empty result


def test_engine_style_tasks_get_the_token_the_engine_and_keyword_parameters(
    registry: TaskRegistry,
) -> None:
    f = flow(registry, {"name": "m", "task": "mark", "params": {"label": "@_input"}})
    (context,) = run(f, "seen")
    assert context["_marks"] == ["seen"]
    assert context["m"] == {"label": "seen", "engine": "GenericWorkflowEngine"}


def test_a_context_task_returning_a_non_dict_fails_naming_step_and_task(
    registry: TaskRegistry,
) -> None:
    registry.register("bad", lambda context, params: [1])
    f = flow(registry, {"name": "oops", "task": "bad"})
    with pytest.raises(FlowRuntimeError, match=r"step 'oops': task 'bad' returned list \[1\]"):
        run(f)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"x": "@_input.nope"}, r"@_input.nope: _input has no key 'nope' \(its keys: 'a', 'l'\)"),
        ({"x": "@_input.a.b"}, "@_input.a.b: _input.a is int, which has no key 'b'"),
        ({"x": "@_input.l.5"}, r"_input.l is a list of 1 items; '5' is not an index"),
    ],
)
def test_an_unresolvable_reference_fails_at_run_time_naming_the_step(
    registry: TaskRegistry, params: dict[str, Any], message: str
) -> None:
    f = flow(registry, {"name": "use", "task": "echo", "params": params})
    with pytest.raises(FlowRuntimeError, match=message) as info:
        run(f, {"a": 1, "l": [0]})
    assert "flow 'f', step 'use'" in str(info.value)
    assert info.value.task == "use"


def test_a_step_that_did_not_run_reads_as_null_with_all_its_keys(
    registry: TaskRegistry,
) -> None:
    f = flow(
        registry,
        {
            "name": "maybe",
            "if": "@_input",
            "then": [{"name": "inner", "task": "echo", "params": {"x": 1}}],
        },
        {"name": "after", "task": "echo", "params": {"whole": "@inner", "x": "@inner.x.y"}},
    )
    (skipped,) = run(f, False)
    assert skipped["after"] == {"whole": None, "x": None}
    with pytest.raises(FlowRuntimeError, match=r"@inner\.x\.y: inner\.x is int"):
        run(f, True)  # a result that exists must have the keys asked for


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"==": ["@_input.n", 3]}, "then"),
        ({"!=": ["@_input.n", 3]}, "else"),
        ({"<": ["@_input.n", 4]}, "then"),
        ({"<=": ["@_input.n", 2]}, "else"),
        ({">": ["@_input.n", 2]}, "then"),
        ({">=": ["@_input.n", 4]}, "else"),
        ({"in": ["@_input.tag", ["a", "b"]]}, "then"),
        ({"in": ["x", "@_input.tag"]}, "else"),
        ({"not": {"==": ["@_input.n", 3]}}, "else"),
        ({"and": [True, "@_input.n", {"==": ["@_input.tag", "b"]}]}, "then"),
        ({"and": [True, 0]}, "else"),
        ({"or": [False, {">": ["@_input.n", 100]}]}, "else"),
        ({"or": [False, "@_input.tag"]}, "then"),
        ("@_input.n", "then"),
        ("@_input.empty", "else"),
    ],
)
def test_conditions_decide_the_branch(
    registry: TaskRegistry, condition: Any, expected: str
) -> None:
    f = flow(
        registry,
        {
            "name": "check",
            "if": condition,
            "then": [{"name": "yes", "task": "echo", "params": {"b": "then"}}],
            "else": [{"name": "no", "task": "echo", "params": {"b": "else"}}],
        },
    )
    (context,) = run(f, {"n": 3, "tag": "b", "empty": []})
    assert context["check"] == {"branch": expected}
    taken = "yes" if expected == "then" else "no"
    assert context[taken] == {"b": expected}
    assert ("no" if taken == "yes" else "yes") not in context


def test_an_if_without_else_runs_nothing_when_false(registry: TaskRegistry) -> None:
    f = flow(
        registry,
        {"name": "check", "if": "@_input", "then": [{"name": "yes", "task": "echo"}]},
        {"name": "after", "task": "echo"},
    )
    skipped, taken = run(f, 0, 1)
    assert "yes" not in skipped
    assert "after" in skipped
    assert skipped["check"] == {"branch": "else"}
    assert "yes" in taken


def test_comparing_incomparable_values_fails_naming_both(registry: TaskRegistry) -> None:
    f = flow(
        registry,
        {"name": "cmp", "if": {"<": ["@_input", 1]}, "then": [{"name": "t", "task": "echo"}]},
    )
    with pytest.raises(FlowRuntimeError, match="step 'cmp': cannot evaluate '<' between str 'a'"):
        run(f, "a")


def test_while_tests_its_body_results_which_read_null_before_the_first_round(
    registry: TaskRegistry,
) -> None:
    def fetch_first(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        page = context["get"]["page"] + 1 if "get" in context else 1
        return {"page": page, "more": page < 3}

    registry.register("fetch", fetch_first)
    f = flow(
        registry,
        {
            "name": "pages",
            "while": {"or": [{"==": ["@get", None]}, "@get.more"]},
            "do": [{"name": "get", "task": "fetch"}],
        },
        {"name": "after", "task": "echo", "params": {"last": "@get.page"}},
    )
    (context,) = run(f)
    assert context["pages"] == {"iterations": 3}
    assert context["after"] == {"last": 3}
    assert "_loops" not in context


def test_a_while_that_never_holds_runs_nothing(registry: TaskRegistry) -> None:
    f = flow(registry, {"name": "loop", "while": "@_input", "do": [{"name": "e", "task": "echo"}]})
    (context,) = run(f, 0)
    assert context["loop"] == {"iterations": 0}
    assert "e" not in context


def test_max_iterations_stops_a_runaway_loop(registry: TaskRegistry) -> None:
    f = flow(
        registry,
        {"name": "loop", "while": True, "max_iterations": 3, "do": [{"name": "e", "task": "echo"}]},
    )
    with pytest.raises(
        FlowRuntimeError, match="step 'loop': the loop did not end within max_iterations=3"
    ):
        run(f)


def test_for_each_binds_the_loop_variable_and_collects_each_rounds_results(
    registry: TaskRegistry,
) -> None:
    f = flow(
        registry,
        {"name": "source", "task": "echo", "params": {"items": [1, 2, 3]}},
        {
            "name": "each",
            "for_each": "@source.items",
            "as": "item",
            "do": [
                {"name": "double", "task": "add", "params": {"a": "@item", "b": "@item"}},
                {
                    "name": "big",
                    "if": {">": ["@double.value", 3]},
                    "then": [{"name": "note", "task": "echo", "params": {"big": "@item"}}],
                },
            ],
        },
        {"name": "after", "task": "echo", "params": {"all": "@each"}},
    )
    (context,) = run(f)
    assert context["each"] == [
        {"double": {"value": 2}, "big": {"branch": "else"}},
        {"double": {"value": 4}, "big": {"branch": "then"}, "note": {"big": 2}},
        {"double": {"value": 6}, "big": {"branch": "then"}, "note": {"big": 3}},
    ]
    assert context["after"] == {"all": context["each"]}
    assert not {"item", "double", "note", "_loops"} & set(context)


def test_for_each_over_a_literal_list_and_an_empty_one(registry: TaskRegistry) -> None:
    f = flow(
        registry,
        {
            "name": "each",
            "for_each": ["a", "b"],
            "as": "x",
            "do": [{"name": "e", "task": "echo", "params": {"x": "@x"}}],
        },
        {"name": "none", "for_each": "@_input", "as": "y", "do": [{"name": "f", "task": "echo"}]},
    )
    (context,) = run(f, [])
    assert context["each"] == [{"e": {"x": "a"}}, {"e": {"x": "b"}}]
    assert context["none"] == []


def test_for_each_over_a_non_list_fails_naming_the_step(registry: TaskRegistry) -> None:
    f = flow(
        registry,
        {"name": "each", "for_each": "@_input", "as": "x", "do": [{"name": "e", "task": "echo"}]},
    )
    with pytest.raises(FlowRuntimeError, match="step 'each': for_each needs a list, got str"):
        run(f, "abc")


def test_nested_loops_keep_their_own_state(registry: TaskRegistry) -> None:
    f = flow(
        registry,
        {
            "name": "rows",
            "for_each": [1, 2],
            "as": "r",
            "do": [
                {
                    "name": "cols",
                    "for_each": [10, 20],
                    "as": "c",
                    "do": [{"name": "cell", "task": "add", "params": {"a": "@r", "b": "@c"}}],
                }
            ],
        },
    )
    (context,) = run(f)
    assert context["rows"] == [
        {"cols": [{"cell": {"value": 11}}, {"cell": {"value": 21}}]},
        {"cols": [{"cell": {"value": 12}}, {"cell": {"value": 22}}]},
    ]


def test_parallel_branches_all_run_and_join_before_the_next_step(
    registry: TaskRegistry,
) -> None:
    threads: set[str] = set()

    def where(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        threads.add(threading.current_thread().name)
        return {"n": params["n"]}

    registry.register("where", where)
    f = flow(
        registry,
        {
            "name": "split",
            "parallel": [
                [
                    {"name": "a", "task": "where", "params": {"n": 1}},
                    {"name": "a2", "task": "add", "params": {"a": "@a.n", "b": 1}},
                ],
                [{"name": "b", "task": "where", "params": {"n": 2}}],
            ],
        },
        {"name": "joined", "task": "add", "params": {"a": "@a2.value", "b": "@b.n"}},
    )
    (context,) = run(f)
    assert context["joined"] == {"value": 4}
    assert context["split"] == {"branches": 2}
    assert len(threads) == 2
    assert threading.current_thread().name not in threads


def test_a_failing_parallel_branch_fails_the_step(registry: TaskRegistry) -> None:
    def boom(context: dict[str, Any], params: dict[str, Any]) -> None:
        raise RuntimeError("branch broke")

    registry.register("boom", boom)
    f = flow(
        registry,
        {
            "name": "split",
            "parallel": [[{"name": "ok", "task": "echo"}], [{"name": "bad", "task": "boom"}]],
        },
    )
    with pytest.raises(FlowRuntimeError, match="step 'bad': RuntimeError: branch broke") as info:
        run(f)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_halt_waits_and_resume_data_becomes_the_step_result(registry: TaskRegistry) -> None:
    f = flow(
        registry,
        {"name": "prepare", "task": "echo", "params": {"amount": "@_input"}},
        {"name": "review", "halt": {"message": "check the amount", "action": "approve"}},
        {
            "name": "decide",
            "if": "@review.approved",
            "then": [{"name": "pay", "task": "echo", "params": {"paid": "@prepare.amount"}}],
        },
    )
    engine = GenericWorkflowEngine()
    engine.callbacks.replace(f.callbacks())
    context = f.new_context(250)
    with pytest.raises(HaltProcessing) as info:
        engine.process([context])
    assert (info.value.message, info.value.action) == ("check the amount", "approve")
    assert info.value.payload == {"step": "review"}
    assert halted_step(context) == {
        "step": "review",
        "message": "check the amount",
        "action": "approve",
    }
    apply_resume_data(context, {"approved": True})
    assert halted_step(context) is None
    engine.restart("current", "next")
    assert context["review"] == {"approved": True}
    assert context["pay"] == {"paid": 250}


def test_a_halt_in_a_loop_halts_in_every_round(registry: TaskRegistry) -> None:
    f = flow(
        registry,
        {
            "name": "each",
            "for_each": [1, 2],
            "as": "n",
            "do": [
                {"name": "ask", "halt": {}},
                {"name": "got", "task": "echo", "params": {"answer": "@ask.ok", "n": "@n"}},
            ],
        },
    )
    engine = GenericWorkflowEngine()
    engine.callbacks.replace(f.callbacks())
    context = f.new_context()
    with pytest.raises(HaltProcessing, match="halted at step 'ask'"):
        engine.process([context])
    apply_resume_data(context, {"ok": "first"})
    with pytest.raises(HaltProcessing):
        engine.restart("current", "next")
    assert "ask" not in context  # the first round's answer is not the second's
    apply_resume_data(context, {"ok": "second"})
    engine.restart("current", "next")
    assert context["each"] == [
        {"ask": {"ok": "first"}, "got": {"answer": "first", "n": 1}},
        {"ask": {"ok": "second"}, "got": {"answer": "second", "n": 2}},
    ]


def test_resume_data_needs_a_token_waiting_at_a_halt_step() -> None:
    with pytest.raises(ValueError, match="does not wait at a halt step"):
        apply_resume_data({"_input": 1}, {"x": 1})
    assert halted_step({"_halt": "garbage"}) is None


def test_a_called_flow_runs_inline_with_its_own_scope(registry: TaskRegistry) -> None:
    stored = {
        ("child", None): {
            "name": "child",
            "steps": [
                {"name": "inner", "task": "add", "params": {"a": "@_input.x", "b": 1}},
                {"name": "wait", "halt": {"message": "child waits"}},
                {"name": "after", "task": "echo", "params": {"seen": "@wait.ok"}},
            ],
        },
    }

    def definitions(name: str, version: int | None) -> dict[str, Any]:
        return stored[(name, version)]

    f = load_flow(
        {
            "name": "parent",
            "steps": [
                {"name": "call", "flow": "child", "params": {"x": "@_input"}},
                {"name": "use", "task": "echo", "params": {"r": "@call.inner.value"}},
            ],
        },
        registry=registry,
        definitions=definitions,
    )
    engine = GenericWorkflowEngine()
    engine.callbacks.replace(f.callbacks())
    context = f.new_context(41)
    with pytest.raises(HaltProcessing, match="child waits"):
        engine.process([context])
    assert halted_step(context) == {"step": "wait", "message": "child waits", "action": None}
    apply_resume_data(context, {"ok": "yes"})
    engine.restart("current", "next")
    assert context["call"] == {
        "_input": {"x": 41},
        "inner": {"value": 42},
        "wait": {"ok": "yes"},
        "after": {"seen": "yes"},
    }
    assert context["use"] == {"r": 42}
    assert "inner" not in context


def test_dag_steps_run_in_a_deterministic_topological_order(registry: TaskRegistry) -> None:
    order: list[str] = []

    def record(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        order.append(params["me"])
        return {}

    registry.register("record", record)
    f = flow(
        registry,
        {
            "name": "report",
            "task": "record",
            "params": {"me": "report"},
            "needs": ["clean", "enrich"],
        },
        {"name": "enrich", "task": "record", "params": {"me": "enrich"}, "needs": ["fetch"]},
        {"name": "clean", "task": "record", "params": {"me": "clean"}, "needs": ["fetch"]},
        {"name": "fetch", "task": "record", "params": {"me": "fetch"}},
        {"name": "alone", "task": "record", "params": {"me": "alone"}},
    )
    run(f)
    run(f)
    assert order == ["fetch", "enrich", "clean", "report", "alone"] * 2


def test_tasks_of_a_flow_announce_themselves_by_step_name(registry: TaskRegistry) -> None:
    f = flow(registry, {"name": "one", "task": "echo"}, {"name": "two", "task": "echo"})
    started: list[str] = []

    def on_task(sender: Any, **kwargs: Any) -> None:
        started.append(sender.current_taskname)

    with signals.task_started.connected_to(on_task):
        run(f)
    assert started == ["_start", "one", "two"]


def test_context_of_accepts_a_dict_or_an_object_holding_one() -> None:
    class Holder:
        def __init__(self) -> None:
            self.data = {"a": 1}

    assert context_of(Holder()) == {"a": 1}
    context: dict[str, Any] = {}
    assert context_of(context) is context
    with pytest.raises(FlowRuntimeError, match="must be a context dict"):
        context_of(42)


def test_calls_are_pinned_to_the_version_a_lookup_reports(registry: TaskRegistry) -> None:
    class Stored:
        def __init__(self, body: dict[str, Any], version: int) -> None:
            self.body = body
            self.version = version

    child = {"name": "child", "steps": [{"name": "k", "task": "echo"}]}
    body = {
        "name": "parent",
        "steps": [
            {"name": "maybe", "if": True, "then": [{"name": "a", "flow": "child"}]},
            {"name": "b", "flow": "child", "version": 1},
            {"name": "p", "parallel": [[{"name": "c", "flow": "child"}]]},
        ],
    }
    pinned = load_flow(body, registry=registry, definitions=lambda n, v: Stored(child, 7))
    steps = pinned.body["steps"]
    assert steps[0]["then"][0]["version"] == 7
    assert steps[1]["version"] == 1  # a version given stays
    assert steps[2]["parallel"][0][0]["version"] == 7
    assert "version" not in body["steps"][0]["then"][0]  # the caller's dict is not changed
    (context,) = run(pinned)
    assert context["b"] == {"_input": {}, "k": {}}

    plain = load_flow(body, registry=registry, definitions=lambda n, v: child)
    assert "version" not in plain.body["steps"][0]["then"][0]  # a bare body says no version
