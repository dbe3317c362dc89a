"""The control-flow patterns of workflow.patterns.controlflow."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

import workflow.patterns
from workflow.engine import GenericWorkflowEngine
from workflow.errors import HaltProcessing, WorkflowDefinitionError, WorkflowError
from workflow.patterns.controlflow import (
    BREAK,
    CHOICE,
    CMP,
    FOR,
    HALT,
    IF,
    IF_ELSE,
    IF_NOT,
    MAX_TIMEOUT,
    OBJ_JUMP_BWD,
    OBJ_JUMP_FWD,
    OBJ_NEXT,
    PARALLEL_SPLIT,
    SIMPLE_MERGE,
    STOP,
    SYNCHRONIZE,
    TASK_JUMP_BWD,
    TASK_JUMP_FWD,
    TASK_JUMP_IF,
    WHILE,
    MySpecialThread,
    MyTimeoutQueue,
)

#: Generous bound for the barriers that prove branches run at the same time.
WAIT = 10


def add(word: str) -> Callable[[Any, Any], None]:
    """A task appending ``word`` to a list token."""

    def task(obj: Any, eng: Any) -> None:
        obj.append(word)

    task.__name__ = word
    return task


def always(obj: Any, eng: Any) -> bool:
    return True


def never(obj: Any, eng: Any) -> bool:
    return False


def run(definition: Any, *tokens: Any, engine: Any = GenericWorkflowEngine) -> Any:
    """Run ``definition`` over ``tokens`` (default: one empty list) and return the engine."""
    eng = engine()
    eng.callbacks.replace(definition)
    eng.process(list(tokens) or [[]])
    return eng


# -- the package ----------------------------------------------------------------------

INVENIO_EXPORTS = {
    "STOP", "BREAK", "OBJ_JUMP_BWD", "OBJ_JUMP_FWD", "OBJ_NEXT", "TASK_JUMP_BWD",
    "TASK_JUMP_FWD", "TASK_JUMP_IF", "IF", "IF_NOT", "IF_ELSE", "WHILE", "PARALLEL_SPLIT",
    "SYNCHRONIZE", "SIMPLE_MERGE", "CHOICE", "EMPTY_CALL", "ENG_GET", "ENG_SET", "OBJ_SET",
    "OBJ_GET", "ERROR", "TRY", "RUN_WF", "CALLFUNC", "DEBUG_CYCLE", "PROFILE",
}  # fmt: skip


def test_package_exports_the_invenio_names_plus_halt_cmp_and_for() -> None:
    assert len(INVENIO_EXPORTS) == 27
    assert set(workflow.patterns.__all__) == INVENIO_EXPORTS | {"HALT", "CMP", "FOR"}
    assert workflow.patterns.__all__ == sorted(workflow.patterns.__all__)
    for name in workflow.patterns.__all__:
        assert getattr(workflow.patterns, name) is not None


def test_max_timeout_is_the_invenio_default() -> None:
    assert MAX_TIMEOUT == 30000


# -- with_nice_docs on the patterns -----------------------------------------------------


def test_a_pattern_documents_its_task_with_a_summary_of_the_call() -> None:
    assert TASK_JUMP_FWD(2).__doc__ == "TASK_JUMP_FWD: args(2); kwargs()."
    assert FOR([1], "x", [], order="DSC")[0].__doc__ == (
        "FOR: args([...], 'x', []); kwargs(order='DSC')."
    )


def test_a_block_pattern_documents_its_first_item() -> None:
    block = IF(always, [add("a")])
    assert block[0].__doc__ == f"IF: args({always!r}, [...]); kwargs()."


def test_a_pattern_takes_its_docstring_from_comment() -> None:
    assert IF(always, [], comment="Only for articles")[0].__doc__ == "Only for articles"
    assert BREAK(comment="Enough").__doc__ == "Enough"


@pytest.mark.parametrize(
    "build",
    [
        lambda **kw: TASK_JUMP_BWD(**kw),
        lambda **kw: TASK_JUMP_FWD(**kw),
        lambda **kw: TASK_JUMP_IF(always, 1, **kw),
        lambda **kw: BREAK(**kw),
        lambda **kw: STOP(**kw),
        lambda **kw: HALT(**kw),
        lambda **kw: OBJ_NEXT(**kw),
        lambda **kw: OBJ_JUMP_FWD(**kw),
        lambda **kw: OBJ_JUMP_BWD(**kw),
        lambda **kw: IF(always, [], **kw)[0],
        lambda **kw: IF_NOT(always, [], **kw)[0],
        lambda **kw: IF_ELSE(always, [], [], **kw)[0],
        lambda **kw: WHILE(always, [], **kw)[0],
        lambda **kw: CMP(1, 2, "<", **kw),
        lambda **kw: FOR([], "x", [], **kw)[0],
        lambda **kw: PARALLEL_SPLIT(add("a"), **kw),
        lambda **kw: SYNCHRONIZE(add("a"), add("b"), **kw),
        lambda **kw: CHOICE(always, ("a", add("a")), **kw)[0],
        lambda **kw: SIMPLE_MERGE(add("a"), add("b"), **kw)[0],
    ],
)
def test_every_control_flow_pattern_takes_a_comment(build: Callable[..., Any]) -> None:
    assert build(comment="described").__doc__ == "described"
    assert build().__doc__.endswith("); kwargs().")


# -- jumps and transitions ----------------------------------------------------------------


def test_task_jump_fwd_2_skips_one_task(make_engine: Any) -> None:
    eng = make_engine([add("a"), TASK_JUMP_FWD(2), add("skipped"), add("b")])
    eng.process([[]])
    assert eng.objects == [["a", "b"]]


def test_task_jump_bwd_goes_back_by_step(make_engine: Any) -> None:
    def done(obj: Any, eng: Any) -> bool:
        return obj.count("a") == 3

    eng = make_engine([add("a"), TASK_JUMP_IF(done, 2), TASK_JUMP_BWD(-2), add("end")])
    eng.process([[]])
    assert eng.objects == [["a", "a", "a", "end"]]


def test_task_jump_if_jumps_only_when_the_condition_holds(make_engine: Any) -> None:
    eng = make_engine([TASK_JUMP_IF(lambda obj, eng: obj == [], 2), add("a"), add("b")])
    eng.process([[], ["x"]])
    assert eng.objects == [["b"], ["x", "a", "b"]]


def test_break_leaves_only_the_innermost_block(make_engine: Any) -> None:
    eng = make_engine([[add("a"), [add("b"), BREAK(), add("no")], add("c")], add("d")])
    eng.process([[]])
    assert eng.objects == [["a", "b", "c", "d"]]


def test_stop_ends_the_run_without_a_deprecation_warning(make_engine: Any) -> None:
    eng = make_engine([add("a"), IF(lambda obj, eng: obj == ["a"], [STOP()]), add("b")])
    eng.process([[], ["x"]])
    assert eng.objects == [["a"], ["x"]]


def test_halt_halts_the_engine_and_the_run_resumes_after_it(make_engine: Any) -> None:
    eng = make_engine([add("a"), HALT(), add("b")])
    with pytest.raises(HaltProcessing):
        eng.process([[]])
    assert eng.objects == [["a"]]
    eng.restart("current", "next")
    assert eng.objects == [["a", "b"]]


def test_obj_next_goes_to_the_next_token_even_from_a_nested_block(make_engine: Any) -> None:
    eng = make_engine([add("a"), [[IF(lambda obj, eng: obj[0] == 1, [OBJ_NEXT()])]], add("b")])
    eng.process([[1], [2]])
    assert eng.objects == [[1, "a"], [2, "a", "b"]]


def test_obj_jump_fwd_skips_tokens(make_engine: Any) -> None:
    eng = make_engine([add("a"), IF(lambda obj, eng: obj[0] == 0, [OBJ_JUMP_FWD(2)])])
    eng.process([[0], [1], [2]])
    assert eng.objects == [[0, "a"], [1], [2, "a"]]


@pytest.mark.parametrize("step", [-1, 1])
def test_obj_jump_bwd_goes_back_abs_step_tokens(make_engine: Any, step: int) -> None:
    def once(obj: Any, eng: Any) -> bool:
        if obj[0] == 1 and "jumped" not in eng.extra_data:
            eng.extra_data["jumped"] = True
            return True
        return False

    eng = make_engine([add("a"), IF(once, [OBJ_JUMP_BWD(step)])])
    eng.process([[0], [1]])
    assert eng.objects == [[0, "a", "a"], [1, "a", "a"]]


@pytest.mark.parametrize("factory", [OBJ_JUMP_FWD, OBJ_JUMP_BWD])
def test_obj_jumps_reject_a_step_that_is_not_an_int(factory: Any) -> None:
    with pytest.raises(WorkflowDefinitionError, match="step must be an int; got '1'"):
        factory("1")


# -- IF, IF_NOT, IF_ELSE --------------------------------------------------------------------


def test_if_is_a_test_followed_by_the_branch() -> None:
    branch = [add("a")]
    block = IF(always, branch)
    assert len(block) == 2
    assert block[1] is branch


@pytest.mark.parametrize(("cond", "expected"), [(always, ["a", "b"]), (never, ["b"])])
def test_if_runs_its_branch_only_when_the_condition_is_true(
    make_engine: Any, cond: Any, expected: list[str]
) -> None:
    eng = make_engine([IF(cond, [add("a")]), add("b")])
    eng.process([[]])
    assert eng.objects == [expected]


@pytest.mark.parametrize(("cond", "expected"), [(always, ["b"]), (never, ["a", "b"])])
def test_if_not_runs_its_branch_only_when_the_condition_is_false(
    make_engine: Any, cond: Any, expected: list[str]
) -> None:
    eng = make_engine([IF_NOT(cond, [add("a")]), add("b")])
    eng.process([[]])
    assert eng.objects == [expected]


def test_if_else_is_test_branch1_break_branch2() -> None:
    block = IF_ELSE(always, [add("a")], [add("b")])
    assert len(block) == 4
    assert block[2].__doc__ == "BREAK: args(); kwargs()."


@pytest.mark.parametrize(("cond", "expected"), [(always, ["a1", "a2", "c"]), (never, ["b", "c"])])
def test_if_else_runs_exactly_one_branch(make_engine: Any, cond: Any, expected: list[str]) -> None:
    eng = make_engine([IF_ELSE(cond, [add("a1"), add("a2")], [add("b")]), add("c")])
    eng.process([[]])
    assert eng.objects == [expected]


@pytest.mark.parametrize(("cond", "expected"), [(always, ["a1", "a2"]), (never, ["b"])])
def test_if_else_with_a_tuple_branch_jumps_past_all_its_tasks(
    make_engine: Any, cond: Any, expected: list[str]
) -> None:
    eng = make_engine([IF_ELSE(cond, (add("a1"), add("a2")), add("b"))])
    eng.process([[]])
    assert eng.objects == [expected]


def test_if_else_needs_both_branches() -> None:
    with pytest.raises(WorkflowDefinitionError, match="IF_ELSE needs two branches"):
        IF_ELSE(always, [add("a")], None)


def test_if_else_resumes_inside_the_chosen_branch_without_testing_again(
    make_engine: Any,
) -> None:
    tests = []

    def cond(obj: Any, eng: Any) -> bool:
        tests.append(obj)
        return True

    eng = make_engine([IF_ELSE(cond, [add("a"), HALT(), add("b")], [add("c")])])
    with pytest.raises(HaltProcessing):
        eng.process([[]])
    assert eng.state.callback_pos == [0, 1, 1]
    eng.restart("current", "next")
    assert eng.objects == [["a", "b"]]
    assert len(tests) == 1


# -- WHILE -------------------------------------------------------------------------------------


def test_while_spreads_its_branch_between_the_test_and_the_jump_back() -> None:
    assert len(WHILE(always, [add("a"), add("b")])) == 4
    assert len(WHILE(always, add("a"))) == 3


def test_while_runs_its_branch_while_the_condition_holds(make_engine: Any) -> None:
    eng = make_engine([WHILE(lambda obj, eng: len(obj) < 6, [add("a"), add("b")]), add("end")])
    eng.process([[]])
    assert eng.objects == [["a", "b", "a", "b", "a", "b", "end"]]


def test_while_counts_its_jump_after_flattening_tuples(make_engine: Any) -> None:
    body = [(add("a"), add("b")), [add("c"), add("d")]]
    eng = make_engine([WHILE(lambda obj, eng: len(obj) < 8, body)])
    eng.process([[]])
    assert eng.objects == [["a", "b", "c", "d", "a", "b", "c", "d"]]


def test_break_directly_in_a_while_body_ends_the_loop(make_engine: Any) -> None:
    eng = make_engine([WHILE(always, [add("a"), BREAK(), add("no")]), add("end")])
    eng.process([[]])
    assert eng.objects == [["a", "end"]]


def test_while_rejects_a_missing_branch() -> None:
    with pytest.raises(WorkflowDefinitionError, match="WHILE: the branch is None"):
        WHILE(always, None)


# -- CMP -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "op", "expected"),
    [
        (1, 1, "eq", True),
        (1, 2, "==", False),
        (2, 1, "gt", True),
        (1, 1, ">", False),
        (1, 1, "gte", True),
        (0, 1, ">=", False),
        (0, 1, "lt", True),
        (1, 1, "<", False),
        (1, 1, "lte", True),
        (2, 1, "<=", False),
        ([0, 1], [0, 1, 0, 1], "<", True),
        ([1, 2, 3], 2, "in", True),
        ([1, 2, 3], 5, "in", False),
        ("abc", "b", "in", True),
    ],
)
def test_cmp_compares_with_each_operator(a: Any, b: Any, op: str, expected: bool) -> None:
    assert CMP(a, b, op)(None, None) is expected


def test_cmp_calls_callables_until_it_gets_a_value() -> None:
    def twice(obj: Any, eng: Any) -> Any:
        return lambda obj, eng: obj["n"]

    task = CMP(twice, lambda obj, eng: eng, "gt")
    assert task({"n": 3}, 2) is True
    assert task({"n": 1}, 2) is False


def test_cmp_task_is_hidden_and_readable() -> None:
    task = CMP(1, 2, "lt")
    assert task.hide is True  # type: ignore[attr-defined]
    assert repr(task) == "CMP(1, 2, 'lt')"
    assert task.__name__ == "CMP"  # type: ignore[attr-defined]
    assert task.__doc__ == "CMP: args(1, 2, 'lt'); kwargs()."


def test_cmp_rejects_an_unknown_operator_when_built() -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        CMP(1, 2, "!=")
    message = str(info.value)
    assert "'!='" in message
    for op in ("eq", "gt", "gte", "lt", "lte", "==", ">", ">=", "<", "<=", "in"):
        assert f" {op}" in message


# -- FOR ---------------------------------------------------------------------------------------


def collect(key: str) -> Callable[[Any, Any], None]:
    """A task appending ``eng.extra_data[key]`` to a list token."""

    def task(obj: Any, eng: Any) -> None:
        obj.append(eng.extra_data[key])

    return task


def test_for_runs_its_body_for_each_item_and_completes(make_engine: Any) -> None:
    eng = make_engine([FOR([10, 20, 30], "x", [collect("x")]), add("end")])
    eng.process([[], []])
    assert eng.objects == [[10, 20, 30, "end"], [10, 20, 30, "end"]]


def test_for_leaves_the_variable_bound_to_the_last_item(make_engine: Any) -> None:
    eng = make_engine([FOR(range(3), "x", [add("body")]), collect("x")])
    eng.process([[]])
    assert eng.objects == [["body", "body", "body", 2]]
    assert eng.extra_data["x"] == 2


def test_for_deletes_its_state_when_the_loop_ends(make_engine: Any) -> None:
    seen = []

    def look(obj: Any, eng: Any) -> None:
        seen.append(dict(eng.extra_data["_Iterators"]))

    eng = make_engine([add("start"), FOR(["a", "b"], "x", [look])])
    eng.process([[]])
    assert [list(state) for state in seen] == [["0:[1, 0]"], ["0:[1, 0]"]]
    assert eng.extra_data["_Iterators"] == {}


def test_for_reads_items_from_a_callable_with_obj_and_eng(make_engine: Any) -> None:
    def items(obj: Any, eng: Any) -> list[int]:
        return [obj[0], eng.extra_data["n"]]

    def set_n(obj: Any, eng: Any) -> None:
        eng.extra_data["n"] = 5

    eng = make_engine([set_n, FOR(items, "x", [collect("x")])])
    eng.process([[7]])
    assert eng.objects == [[7, 7, 5]]


def test_for_dsc_runs_from_the_last_item(make_engine: Any) -> None:
    eng = make_engine([FOR([1, 2, 3], "x", [collect("x")], order="DSC"), collect("x")])
    eng.process([[]])
    assert eng.objects == [[3, 2, 1, 1]]


def test_for_calls_a_callable_setter_with_index_and_item_and_the_last_item_at_the_end(
    make_engine: Any,
) -> None:
    calls = []

    def setter(obj: Any, eng: Any, index: int, item: Any) -> None:
        calls.append((index, item))

    eng = make_engine([FOR(["a", "b", "c"], setter, [add("body")], order="DSC")])
    eng.process([[]])
    assert calls == [(2, "c"), (1, "b"), (0, "a"), (0, "a")]


def test_for_over_an_empty_list_runs_the_body_zero_times(make_engine: Any) -> None:
    calls = []

    def setter(obj: Any, eng: Any, index: int, item: Any) -> None:
        calls.append(item)

    eng = make_engine([FOR([], setter, [add("body")]), add("end")])
    eng.process([[]])
    assert eng.objects == [["end"]]
    assert calls == []
    assert eng.extra_data["_Iterators"] == {}


def test_for_reads_the_items_once_with_cache_data(make_engine: Any) -> None:
    reads = []

    def items(obj: Any, eng: Any) -> list[int]:
        reads.append(1)
        return [1, 2, 3]

    eng = make_engine([FOR(items, "x", [collect("x")], cache_data=True)])
    eng.process([[]])
    assert eng.objects == [[1, 2, 3]]
    assert len(reads) == 1


def test_for_reads_the_items_before_each_round_without_cache_data(make_engine: Any) -> None:
    def items(obj: Any, eng: Any) -> list[Any]:
        return list(obj)

    def grow(obj: Any, eng: Any) -> None:
        if len(obj) < 4:
            obj.append(len(obj))

    eng = make_engine([FOR(items, "x", [grow])])
    eng.process([[0]])
    assert eng.objects == [[0, 1, 2, 3]]


def test_for_accepts_a_one_shot_iterable(make_engine: Any) -> None:
    eng = make_engine([FOR((n * n for n in range(3)), "x", [collect("x")])])
    eng.process([[], []])
    assert eng.objects == [[0, 1, 4], [0, 1, 4]]


def test_nested_for_loops_restart_the_inner_loop_for_each_outer_item(make_engine: Any) -> None:
    def pair(obj: Any, eng: Any) -> None:
        obj.append(eng.extra_data["i"] + eng.extra_data["j"])

    eng = make_engine([FOR(["a", "b"], "i", [FOR(["1", "2"], "j", [pair])])])
    eng.process([[]])
    assert eng.objects == [["a1", "a2", "b1", "b2"]]


def test_for_left_by_break_starts_over_for_the_next_token(make_engine: Any) -> None:
    eng = make_engine([FOR([1, 2, 3], "x", [collect("x"), BREAK()])])
    eng.process([[], []])
    assert eng.objects == [[1], [1]]


def test_for_survives_a_halt_in_its_body_and_resumes_the_loop(make_engine: Any) -> None:
    def halt_on_2(obj: Any, eng: Any) -> None:
        if eng.extra_data["x"] == 2 and "halted" not in eng.extra_data:
            eng.extra_data["halted"] = True
            eng.halt("at 2")

    eng = make_engine([FOR([1, 2, 3], "x", [halt_on_2, collect("x")])])
    with pytest.raises(HaltProcessing):
        eng.process([[]])
    assert eng.objects == [[1]]
    eng.restart("current", "current")
    assert eng.objects == [[1, 2, 3]]
    assert eng.extra_data["_Iterators"] == {}


def test_for_rerun_from_the_first_task_starts_the_loop_over(make_engine: Any) -> None:
    def halt_once(obj: Any, eng: Any) -> None:
        if "halted" not in eng.extra_data:
            eng.extra_data["halted"] = True
            eng.halt()

    eng = make_engine([FOR([1, 2], "x", [collect("x"), halt_once])])
    with pytest.raises(HaltProcessing):
        eng.process([[]])
    eng.restart("current", "first")
    assert eng.objects == [[1, 1, 2]]


def test_for_resumed_without_its_state_starts_the_loop_over(make_engine: Any) -> None:
    def halt_once(obj: Any, eng: Any) -> None:
        if "halted" not in eng.extra_data:
            eng.extra_data["halted"] = True
            eng.halt()

    eng = make_engine([FOR([1, 2], "x", [collect("x"), halt_once])])
    with pytest.raises(HaltProcessing):
        eng.process([[]])
    del eng.extra_data["_Iterators"]  # e.g. an engine restored without its extra_data
    eng.restart("current", "next")
    assert eng.objects == [[1, 1, 2]]


def test_for_rejects_a_bad_order_setter_or_source() -> None:
    with pytest.raises(WorkflowDefinitionError, match="order must be 'ASC' or 'DSC'; got 'UP'"):
        FOR([1], "x", [], order="UP")
    with pytest.raises(WorkflowDefinitionError, match="setter must be"):
        FOR([1], 3, [])  # type: ignore[arg-type]
    with pytest.raises(WorkflowDefinitionError, match="the items must be a sequence"):
        FOR(42, "x", [])
    with pytest.raises(WorkflowDefinitionError, match="FOR: the branch is None"):
        FOR([1], "x", None)


# -- CHOICE ----------------------------------------------------------------------------------------


def test_choice_runs_the_whole_chosen_branch_of_several_tasks(make_engine: Any) -> None:
    def arbiter(obj: Any, eng: Any) -> Any:
        return obj[0]

    choice = CHOICE(
        arbiter,
        ("a", add("a1"), add("a2")),
        ("b", add("b1"), [add("b2"), add("b3")]),
        c=(add("c1"), add("c2")),
        d=[add("d1"), add("d2")],
        e=add("e1"),
    )
    eng = make_engine([choice, add("end")])
    eng.process([["a"], ["b"], ["c"], ["d"], ["e"]])
    assert eng.objects == [
        ["a", "a1", "a2", "end"],
        ["b", "b1", "b2", "b3", "end"],
        ["c", "c1", "c2", "end"],
        ["d", "d1", "d2", "end"],
        ["e", "e1", "end"],
    ]


def test_choice_with_an_empty_branch_runs_nothing(make_engine: Any) -> None:
    eng = make_engine([CHOICE(lambda obj, eng: "skip", ("skip",), ("other", add("no"))), add("z")])
    eng.process([[]])
    assert eng.objects == [["z"]]


def test_choice_names_an_unknown_key_and_the_known_ones() -> None:
    block = CHOICE(lambda obj, eng: "zz", ("a", add("a")), b=add("b"))
    with pytest.raises(WorkflowError) as info:
        run([add("x"), block])
    message = str(info.value)
    assert "'zz'" in message
    assert "known keys: 'a', 'b'" in message
    assert info.value.callback_pos == [1, 0]


def test_choice_with_an_unhashable_key_is_an_unknown_key() -> None:
    with pytest.raises(WorkflowError, match=r"chose \[\], which names no branch"):
        run([CHOICE(lambda obj, eng: [], ("a", add("a")))])


def test_choice_rejects_malformed_and_repeated_keys() -> None:
    with pytest.raises(WorkflowDefinitionError, match=r"tuple \(key, task, \.\.\.\)"):
        CHOICE(always, add("a"))
    with pytest.raises(WorkflowDefinitionError, match="the key 'a' names two branches"):
        CHOICE(always, ("a", add("a")), a=add("b"))


# -- SIMPLE_MERGE ------------------------------------------------------------------------------


def test_simple_merge_runs_the_first_branch_then_the_last(make_engine: Any) -> None:
    merge = SIMPLE_MERGE((add("a1"), add("a2")), [add("b")], (add("c1"), add("c2")), add("m"))
    eng = make_engine([merge, add("end")])
    eng.process([[]])
    assert eng.objects == [["a1", "a2", "m", "end"]]


def test_simple_merge_of_two_runs_both(make_engine: Any) -> None:
    eng = make_engine([SIMPLE_MERGE(add("a"), add("m"))])
    eng.process([[]])
    assert eng.objects == [["a", "m"]]


def test_simple_merge_needs_two_arguments() -> None:
    with pytest.raises(WorkflowDefinitionError, match=r"at least two arguments.*got 1"):
        SIMPLE_MERGE(add("a"))


def test_simple_merge_keeps_the_docstrings_of_user_tasks() -> None:
    first = add("a")
    first.__doc__ = "mine"
    SIMPLE_MERGE(first, add("m"))
    assert first.__doc__ == "mine"


# -- PARALLEL_SPLIT ------------------------------------------------------------------------------


class NeedsArguments(GenericWorkflowEngine):
    def __init__(self, db: Any) -> None:
        super().__init__()
        self.db = db


def test_parallel_split_runs_branches_at_once_and_waits_for_them() -> None:
    barrier = threading.Barrier(3, timeout=WAIT)
    done = []

    def branch(name: str) -> Callable[[Any, Any], None]:
        def task(obj: Any, eng: Any) -> None:
            barrier.wait()  # only passes when all three branches run together
            done.append(name)

        return task

    def check(obj: Any, eng: Any) -> None:
        obj.append(sorted(done))

    eng = run([PARALLEL_SPLIT(branch("a"), [branch("b")], (branch("c"),)), check])
    assert eng.objects == [[["a", "b", "c"]]]


def test_parallel_split_runs_each_branch_in_a_child_engine_of_the_same_class(
    make_engine: Any,
) -> None:
    engines = []

    def remember(obj: Any, eng: Any) -> None:
        engines.append(eng)

    parent = make_engine([PARALLEL_SPLIT(remember, [remember, remember])])
    parent.process([[]])
    children = {id(child): child for child in engines}
    assert len(engines) == 3
    assert len(children) == 2
    assert parent not in engines
    assert all(type(child) is type(parent) for child in engines)


def test_parallel_split_falls_back_to_a_generic_child_for_engines_with_arguments() -> None:
    engines = []

    def remember(obj: Any, eng: Any) -> None:
        engines.append(eng)

    parent = NeedsArguments("db")
    parent.callbacks.replace([PARALLEL_SPLIT(remember)])
    parent.process([[]])
    assert [type(child) for child in engines] == [GenericWorkflowEngine]


def test_parallel_split_shares_one_lock_through_the_branches_extra_data() -> None:
    locks = []

    def use_lock(obj: Any, eng: Any) -> None:
        with eng.extra_data["lock"]:
            locks.append(eng.extra_data["lock"])
            obj.append(len(obj))

    eng = run([PARALLEL_SPLIT(use_lock, use_lock, use_lock)])
    assert sorted(eng.objects[0]) == [0, 1, 2]
    assert len(locks) == 3
    assert all(lock is locks[0] for lock in locks)
    assert isinstance(locks[0], type(threading.Lock()))
    # The calling engine's extra_data stays data only: a stored run keeps it.
    assert "lock" not in eng.extra_data


def test_parallel_split_reraises_a_branch_error_in_the_caller() -> None:
    def fail(obj: Any, eng: Any) -> None:
        raise ValueError("branch broke")

    with pytest.raises(ValueError, match="branch broke"):
        run([PARALLEL_SPLIT(add("a"), fail), add("never")])


def test_parallel_split_raises_the_first_failure_and_notes_the_others() -> None:
    barrier = threading.Barrier(3, timeout=WAIT)

    def fail(message: str) -> Callable[[Any, Any], None]:
        def task(obj: Any, eng: Any) -> None:
            barrier.wait()
            raise KeyError(message)

        return task

    with pytest.raises(KeyError, match="first") as info:
        run([PARALLEL_SPLIT(fail("first"), add("ok"), fail("second"), fail("third"))])
    assert info.value.__notes__ == [
        "PARALLEL_SPLIT: branch 2 failed too: KeyError('second')",
        "PARALLEL_SPLIT: branch 3 failed too: KeyError('third')",
    ]


def test_parallel_split_halts_the_caller_when_a_branch_halts() -> None:
    with pytest.raises(HaltProcessing):
        run([add("a"), PARALLEL_SPLIT([add("b"), HALT()]), add("never")])


def test_parallel_split_with_no_branch_does_nothing() -> None:
    assert run([PARALLEL_SPLIT(), add("a")]).objects == [["a"]]


# -- SYNCHRONIZE --------------------------------------------------------------------------------


def test_synchronize_runs_each_branch_once_at_the_same_time_then_the_last() -> None:
    barrier = threading.Barrier(3, timeout=WAIT)
    calls: list[str] = []

    def branch(name: str) -> Callable[[Any, Any], None]:
        def task(obj: Any, eng: Any) -> None:
            barrier.wait()
            calls.append(name)

        return task

    def last(obj: Any, eng: Any) -> None:
        calls.append("last")

    run([SYNCHRONIZE(branch("a"), branch("b"), branch("c"), last)])
    assert sorted(calls[:3]) == ["a", "b", "c"]
    assert calls[3:] == ["last"]


def test_synchronize_runs_task_branches_with_the_calling_engine() -> None:
    engines = []

    def remember(obj: Any, eng: Any) -> None:
        engines.append(eng)

    eng = run([SYNCHRONIZE(remember, remember)])
    assert engines == [eng, eng]


def test_synchronize_runs_list_branches_in_child_engines(make_engine: Any) -> None:
    engines = []

    def remember(obj: Any, eng: Any) -> None:
        engines.append(eng)

    parent = make_engine([SYNCHRONIZE([remember], (remember,), [remember])])
    parent.process([[]])
    assert len(set(map(id, engines))) == 3
    assert parent not in engines
    assert all(type(child) is type(parent) for child in engines)


def test_synchronize_raises_timeout_error_naming_the_timeout() -> None:
    release = threading.Event()
    ran_last = []

    def stuck(obj: Any, eng: Any) -> None:
        release.wait(WAIT)

    def last(obj: Any, eng: Any) -> None:
        ran_last.append(obj)

    try:
        with pytest.raises(
            TimeoutError, match=r"branch 1 still running after the timeout of 0\.05 s"
        ):
            run([SYNCHRONIZE(add("a"), stuck, last, timeout=0.05)])
    finally:
        release.set()
        for thread in threading.enumerate():
            if thread.name.startswith("SYNCHRONIZE-"):
                thread.join(WAIT)
    assert ran_last == []


def test_synchronize_reraises_a_branch_error_and_skips_the_last() -> None:
    ran_last = []

    def fail(obj: Any, eng: Any) -> None:
        raise RuntimeError("boom")

    def last(obj: Any, eng: Any) -> None:
        ran_last.append(obj)

    with pytest.raises(RuntimeError, match="boom"):
        run([SYNCHRONIZE(fail, [add("a")], last)])
    assert ran_last == []


def test_synchronize_needs_two_arguments() -> None:
    with pytest.raises(WorkflowDefinitionError, match=r"at least two arguments.*got 1"):
        SYNCHRONIZE(add("a"))


def test_synchronize_rejects_bad_arguments() -> None:
    with pytest.raises(WorkflowDefinitionError, match="timeout must be > 0 or None; got 0"):
        SYNCHRONIZE(add("a"), add("b"), timeout=0)
    with pytest.raises(WorkflowDefinitionError, match="a task or a list of tasks; got 'b'"):
        SYNCHRONIZE(add("a"), "b")


def test_synchronize_without_timeout_waits_as_long_as_it_takes() -> None:
    eng = run([SYNCHRONIZE([add("a")], add("b"), timeout=None)])
    assert sorted(eng.objects[0]) == ["a", "b"]


# -- the queue and the worker thread ------------------------------------------------------------


def test_my_special_thread_runs_one_queued_call_and_marks_it_done() -> None:
    calls = MyTimeoutQueue()
    results = []
    calls.put(lambda: results.append("ran"))
    thread = MySpecialThread(calls, name="worker")
    thread.start()
    calls.join_with_timeout(WAIT)
    thread.join(WAIT)
    assert results == ["ran"]
    assert repr(calls) == "<MyTimeoutQueue unfinished=0>"


def test_my_timeout_queue_raises_timeout_error_when_calls_are_unfinished() -> None:
    calls = MyTimeoutQueue()
    calls.put(lambda: None)
    with pytest.raises(TimeoutError, match=r"1 queued calls still running after 0\.01 s"):
        calls.join_with_timeout(0.01)


def test_for_left_by_break_leaves_no_state_once_its_tokens_complete(make_engine: Any) -> None:
    eng = make_engine([FOR([1, 2, 3], "x", [collect("x"), BREAK()]), add("end")])
    eng.process([[] for _ in range(50)])
    assert eng.objects[0] == [1, "end"]
    assert eng.extra_data["_Iterators"] == {}


def test_for_state_of_a_halted_token_stays_until_it_completes(make_engine: Any) -> None:
    def halt_first_round(obj: Any, eng: Any) -> None:
        if not obj:
            obj.append("halted")
            eng.halt()

    eng = make_engine([FOR([1, 2], "x", [halt_first_round, collect("x")])])
    eng.process([[], []], stop_on_halt=False)
    # Each halted token keeps its own cursor, keyed by token and loop position.
    assert sorted(eng.extra_data["_Iterators"]) == ["0:[0, 0]", "1:[0, 0]"]
    eng.state.token_pos, eng.state.callback_pos = 0, [0, 2]
    eng.restart("current", "next", objects=eng.objects[:1])
    assert eng.objects == [["halted", 1, 2]]
    assert sorted(eng.extra_data["_Iterators"]) == ["1:[0, 0]"]
