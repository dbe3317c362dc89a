"""The engine's contract: running tokens, transitions, hooks and introspection."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from workflow.engine import (
    ActionMapper,
    GenericWorkflowEngine,
    ProcessingFactory,
    TransitionActions,
)
from workflow.errors import HaltProcessing, WorkflowDefinitionError, WorkflowError
from workflow.utils import classproperty

from .conftest import append, halt_task


class Token:
    def __init__(self, data: int = 0) -> None:
        self.data = data
        self.seen: list[str] = []


def record(name: str) -> Any:
    def task(obj: Any, eng: Any) -> None:
        obj.seen.append(name)

    task.__name__ = name
    return task


# -- process() input -------------------------------------------------------


@pytest.mark.parametrize("objects", ["abc", b"abc", 42, None])
def test_process_rejects_a_non_iterable_and_names_its_type(make_engine: Any, objects: Any) -> None:
    eng = make_engine([append("a")])
    with pytest.raises(WorkflowError) as info:
        eng.process(objects)
    assert str(info.value) == f"Passed in object {type(objects)} is not an iterable"


def test_process_rejects_a_generator_with_a_hint(make_engine: Any) -> None:
    eng = make_engine([append("a")])
    with pytest.raises(WorkflowError, match=r"has no len\(\) or indexing.*list\(tokens\)"):
        eng.process([] for _ in range(2))


def test_process_warns_on_an_empty_token_list(
    make_engine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    eng = make_engine([append("a")])
    with caplog.at_level(logging.WARNING):
        eng.process([])
    assert caplog.messages == [
        "List of objects is empty. Running workflow on empty set has no effect."
    ]
    assert not eng.has_completed


def test_process_without_callbacks_says_so(make_engine: Any) -> None:
    eng = make_engine()
    with pytest.raises(WorkflowError, match=r"^The callbacks are empty, did you set them\?$"):
        eng.process([[]])


def test_process_accepts_any_object_with_len_and_indexing(make_engine: Any) -> None:
    eng = make_engine([append("a")])
    tokens = {0: [], 1: []}
    eng.process(tokens)
    assert tokens == {0: ["a"], 1: ["a"]}


def test_tokens_appended_by_a_task_are_processed(make_engine: Any) -> None:
    def spawn(obj: Any, eng: Any) -> None:
        if obj and obj[0] == "parent":
            eng.objects.append(["child"])

    eng = make_engine([spawn, append("done")])
    tokens: list[list[str]] = [["parent"]]
    eng.process(tokens)
    assert tokens == [["parent", "done"], ["child", "done"]]


def test_task_return_values_are_ignored(make_engine: Any) -> None:
    eng = make_engine([lambda obj, eng: "ignored", append("a")])
    tokens: list[list[str]] = [[]]
    eng.process(tokens)
    assert tokens == [["a"]]


def test_engine_can_be_reused_and_keeps_extra_data(make_engine: Any) -> None:
    def count(obj: Any, eng: Any) -> None:
        eng.extra_data["count"] = eng.extra_data.get("count", 0) + 1

    eng = make_engine([count])
    eng.process([1, 2])
    eng.process([3])
    assert eng.extra_data["count"] == 3
    assert eng.has_completed


# -- transitions -----------------------------------------------------------


def test_stop_leaves_the_token_loop_and_finishes(make_engine: Any) -> None:
    def stop_on_second(obj: Any, eng: Any) -> None:
        if obj.data == 2:
            eng.stop()

    eng = make_engine([record("a"), stop_on_second, record("b")])
    tokens = [Token(1), Token(2), Token(3)]
    eng.process(tokens)
    assert [t.seen for t in tokens] == [["a", "b"], ["a"], []]
    assert eng.state.token_pos == 1
    assert eng.state.callback_pos == [1]


def test_halt_propagates_and_keeps_the_position(make_engine: Any) -> None:
    eng = make_engine([record("a"), halt_task, record("b")])
    tokens = [Token(), Token()]
    with pytest.raises(HaltProcessing) as info:
        eng.process(tokens)
    assert info.value.message == "halted by test"
    assert eng.state.token_pos == 0
    assert eng.state.callback_pos == [1]
    assert eng.current_object is tokens[0]
    assert not eng.has_completed


def test_halt_carries_action_and_payload(make_engine: Any) -> None:
    def halt(obj: Any, eng: Any) -> None:
        eng.halt("review me", action="approve", payload={"score": 3})

    eng = make_engine([halt])
    with pytest.raises(HaltProcessing) as info:
        eng.process([Token()])
    assert (info.value.action, info.value.payload) == ("approve", {"score": 3})


def test_continue_next_token_starts_the_next_token_at_its_first_task(make_engine: Any) -> None:
    def skip_first(obj: Any, eng: Any) -> None:
        if obj.data == 1:
            eng.continue_next_token()

    eng = make_engine([[record("a"), [skip_first, record("b")]], record("c")])
    tokens = [Token(1), Token(2)]
    eng.process(tokens)
    assert [t.seen for t in tokens] == [["a"], ["a", "b", "c"]]
    assert eng.has_completed


def test_skip_token_works_on_any_object_and_resets_the_position(make_engine: Any) -> None:
    def skip_odd(obj: Any, eng: Any) -> None:
        if obj % 2:
            eng.skip_token()

    seen: list[tuple[int, str]] = []
    eng = make_engine(
        [lambda o, e: seen.append((o, "first")), [skip_odd], lambda o, e: seen.append((o, "last"))]
    )
    eng.process([1, 2, 3])
    assert seen == [(1, "first"), (2, "first"), (2, "last"), (3, "first")]


def test_abort_works_on_any_object_and_finishes_the_run(make_engine: Any) -> None:
    eng = make_engine([lambda o, e: e.abort(), append("never")])
    tokens: list[list[str]] = [[], []]
    eng.process(tokens)
    assert tokens == [[], []]
    assert eng.state.token_pos == 0


@pytest.mark.parametrize(
    ("offset", "expected_order"),
    [(1, [0, 1, 2]), (2, [0, 2]), (-1, [0, 1, 0, 1, 2]), (100, [0]), (-100, [0, 1, 0, 1, 2])],
)
def test_jump_token_moves_relative_to_the_current_token(
    make_engine: Any, offset: int, expected_order: list[int]
) -> None:
    order: list[int] = []

    def visit(obj: Any, eng: Any) -> None:
        order.append(obj["id"])
        if obj["id"] == (1 if offset < 0 else 0) and not obj["jumped"]:
            obj["jumped"] = True
            eng.jump_token(offset)

    eng = make_engine([visit, lambda o, e: o.setdefault("done", True)])
    tokens = [{"id": i, "jumped": False} for i in range(3)]
    eng.process(tokens)
    assert order == expected_order
    assert eng.has_completed


def test_jump_token_zero_redoes_the_current_token(make_engine: Any) -> None:
    def twice(obj: Any, eng: Any) -> None:
        obj.append("visit")
        if len(obj) == 1:
            eng.jump_token(0)

    eng = make_engine([twice])
    tokens: list[list[str]] = [[]]
    eng.process(tokens)
    assert tokens == [["visit", "visit"]]


def test_jump_token_past_the_end_finishes_cleanly(make_engine: Any) -> None:
    eng = make_engine([lambda o, e: e.jump_token(10)])
    tokens = [Token(), Token()]
    eng.process(tokens)
    assert eng.has_completed
    assert eng.current_object is tokens[-1]


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (1, ["jump", "a", "b", "c"]),
        (2, ["jump", "b", "c"]),
        (3, ["jump", "c"]),
        (4, ["jump", "after"]),
        (99, ["jump", "after"]),
    ],
)
def test_jump_call_forward_moves_within_the_innermost_list(
    make_engine: Any, offset: int, expected: list[str]
) -> None:
    def jump(obj: Any, eng: Any) -> None:
        obj.append("jump")
        eng.jump_call(offset)

    eng = make_engine([[jump, append("a"), append("b"), append("c")], append("after")])
    tokens: list[list[str]] = [[]]
    eng.process(tokens)
    assert tokens[0][: len(expected)] == expected
    assert tokens[0][-1] == "after"


@pytest.mark.parametrize(("offset", "runs_of_a"), [(-1, 2), (-2, 2), (-99, 2)])
def test_jump_call_backward_is_clamped_to_the_list_start(
    make_engine: Any, offset: int, runs_of_a: int
) -> None:
    def back_once(obj: Any, eng: Any) -> None:
        if obj.count("a") == 1:
            eng.jump_call(offset)

    eng = make_engine([append("a"), back_once, append("b")])
    tokens: list[list[str]] = [[]]
    eng.process(tokens)
    assert tokens[0].count("a") == runs_of_a
    assert tokens[0][-1] == "b"


def test_jump_call_zero_runs_the_same_task_again(make_engine: Any) -> None:
    def again(obj: Any, eng: Any) -> None:
        obj.append("x")
        if len(obj) < 3:
            eng.jump_call(0)

    eng = make_engine([again])
    tokens: list[list[str]] = [[]]
    eng.process(tokens)
    assert tokens == [["x", "x", "x"]]


@pytest.mark.parametrize("offset", ["1", 1.0, None])
def test_jump_offsets_must_be_int(make_engine: Any, offset: Any) -> None:
    eng = make_engine([append("a")])
    with pytest.raises(TypeError, match="offset must be an int"):
        eng.jump_call(offset)
    with pytest.raises(TypeError, match="offset must be an int"):
        eng.jump_token(offset)


def test_break_current_loop_leaves_the_innermost_list(make_engine: Any) -> None:
    eng = make_engine(
        [
            [
                append("a"),
                [append("b"), lambda o, e: e.break_current_loop(), append("x")],
                append("c"),
            ]
        ]
    )
    tokens: list[list[str]] = [[]]
    eng.process(tokens)
    assert tokens == [["a", "b", "c"]]


def test_break_at_top_level_ends_the_token_normally(make_engine: Any) -> None:
    finished: list[Any] = []

    class Factory(ProcessingFactory):
        @staticmethod
        def after_object(eng: Any, objects: Any, obj: Any) -> None:
            finished.append(obj)

    class Engine(type(make_engine())):  # type: ignore[misc]
        @classproperty
        def processing_factory(cls) -> type[ProcessingFactory]:
            return Factory

    eng = Engine()
    eng.callbacks.replace([append("a"), lambda o, e: e.break_current_loop(), append("x")])
    tokens: list[list[str]] = [[], []]
    eng.process(tokens)
    assert tokens == [["a"], ["a"]]
    assert finished == tokens


# -- stop_on_error / stop_on_halt / initial_run ---------------------------------


def test_workflow_error_skips_to_next_token_when_not_stopping_on_error(make_engine: Any) -> None:
    def fail_first(obj: Any, eng: Any) -> None:
        if obj.data == 1:
            raise WorkflowError("bad token")

    eng = make_engine([record("a"), fail_first, record("b")])
    tokens = [Token(1), Token(2)]
    eng.process(tokens, stop_on_error=False)
    assert [t.seen for t in tokens] == [["a"], ["a", "b"]]
    assert eng.has_completed


def test_workflow_error_propagates_by_default(make_engine: Any) -> None:
    eng = make_engine([lambda o, e: (_ for _ in ()).throw(WorkflowError("boom"))])
    with pytest.raises(WorkflowError, match="boom"):
        eng.process([Token()])


def test_other_exceptions_propagate_even_when_not_stopping_on_error(make_engine: Any) -> None:
    def fail(obj: Any, eng: Any) -> None:
        raise KeyError("missing")

    eng = make_engine([fail])
    with pytest.raises(KeyError, match="missing"):
        eng.process([Token(), Token()], stop_on_error=False)
    assert eng.state.token_pos == 0


def test_halts_skip_to_next_token_when_not_stopping_on_halt(make_engine: Any) -> None:
    def halt_first(obj: Any, eng: Any) -> None:
        if obj.data == 1:
            eng.halt("wait")

    eng = make_engine([record("a"), halt_first, record("b")])
    tokens = [Token(1), Token(2), Token(1)]
    eng.process(tokens, stop_on_halt=False)
    assert [t.seen for t in tokens] == [["a"], ["a", "b"], ["a"]]
    assert eng.has_completed


def test_initial_run_false_continues_with_the_next_token(make_engine: Any) -> None:
    eng = make_engine([append("a")])
    tokens: list[list[str]] = [[], [], []]
    eng.state.token_pos = 0
    eng.process(tokens, initial_run=False, reset_state=False)
    assert tokens == [[], ["a"], ["a"]]


# -- definitions -------------------------------------------------------------


def test_callback_chooser_routes_tokens_to_keyed_definitions() -> None:
    class Router(GenericWorkflowEngine):
        def callback_chooser(self, obj: Any) -> Any:
            return self.callbacks.get(obj["kind"])

    eng = Router()
    eng.callbacks.add_many([append("a1"), [append("a2")]], key="a")
    eng.callbacks.add(append("b1"), key="b")
    tokens = [{"kind": "a", "log": []}, {"kind": "b", "log": []}]

    def to_log(word: str) -> Any:
        return lambda o, e: o["log"].append(word)

    eng.callbacks.replace([to_log("a1"), [to_log("a2")]], key="a")
    eng.callbacks.replace([to_log("b1")], key="b")
    eng.process(tokens)
    assert [t["log"] for t in tokens] == [["a1", "a2"], ["b1"]]
    assert eng.current_taskname == "<lambda>"


class Featured:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.seen: list[str] = []

    def getFeature(self, name: str) -> str:
        return self.kind


def test_get_feature_routing_still_works_but_warns(make_engine: Any) -> None:
    eng = make_engine([record("star")])
    eng.callbacks.replace([record("typed")], key="typed")
    tokens = [Featured("typed")]
    with pytest.warns(DeprecationWarning, match="getFeature"):
        eng.process(tokens)
    assert tokens[0].seen == ["typed"]


def test_token_with_falsy_feature_type_is_skipped_with_a_warning(
    make_engine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    eng = make_engine([record("star")])
    tokens = [Featured("")]
    with pytest.warns(DeprecationWarning), caplog.at_level(logging.WARNING):
        eng.process(tokens)
    assert tokens[0].seen == []
    assert "has no 'type' feature" in caplog.text


def test_an_empty_definition_runs_nothing_but_counts_the_token(make_engine: Any) -> None:
    eng = make_engine([])
    eng.process([1, 2])
    assert eng.has_completed


def test_a_definition_item_that_is_not_a_task_is_refused_when_added() -> None:
    eng = GenericWorkflowEngine()
    with pytest.raises(WorkflowDefinitionError, match=r"item 1 .* not a task: str 'oops'"):
        eng.callbacks.replace([append("a"), "oops"])


def test_a_resume_position_that_does_not_fit_the_definition_is_reported(
    make_engine: Any,
) -> None:
    eng = make_engine([append("a"), append("b")])
    eng.objects = [[]]
    eng.state.callback_pos = [1, 0]
    with pytest.raises(WorkflowError, match=r"cannot resume at callback_pos \[1, 0\]"):
        eng.restart("next", "current")


# -- hooks -----------------------------------------------------------------


def test_hooks_run_in_the_documented_order() -> None:
    calls: list[str] = []

    class Mapper(ActionMapper):
        @staticmethod
        def before_callbacks(obj: Any, eng: Any) -> None:
            calls.append("before_callbacks")

        @staticmethod
        def after_callbacks(obj: Any, eng: Any) -> None:
            calls.append("after_callbacks")

        @staticmethod
        def before_each_callback(eng: Any, callback_func: Any, obj: Any) -> None:
            calls.append(f"before_each {callback_func.__name__}")

        @staticmethod
        def after_each_callback(eng: Any, callback_func: Any, obj: Any) -> None:
            calls.append(f"after_each {callback_func.__name__}")

    class Factory(ProcessingFactory):
        @classproperty
        def action_mapper(cls) -> type[ActionMapper]:
            return Mapper

        @staticmethod
        def before_processing(eng: Any, objects: Any) -> None:
            calls.append("before_processing")
            ProcessingFactory.before_processing(eng, objects)

        @staticmethod
        def after_processing(eng: Any, objects: Any) -> None:
            calls.append("after_processing")
            ProcessingFactory.after_processing(eng, objects)

        @staticmethod
        def before_object(eng: Any, objects: Any, obj: Any) -> None:
            calls.append(f"before_object {eng.state.token_pos}")

        @staticmethod
        def after_object(eng: Any, objects: Any, obj: Any) -> None:
            calls.append(f"after_object {eng.state.callback_pos}")

    class Engine(GenericWorkflowEngine):
        @classproperty
        def processing_factory(cls) -> type[ProcessingFactory]:
            return Factory

        def callback_chooser(self, obj: Any) -> Any:
            calls.append("callback_chooser")
            return super().callback_chooser(obj)

        def execute_callback(self, callback: Any, obj: Any) -> None:
            calls.append(f"execute {callback.__name__}")
            super().execute_callback(callback, obj)

    eng = Engine()
    eng.callbacks.replace([append("a"), [append("b")]])
    eng.process([[]])
    assert calls == [
        "before_processing",
        "before_object 0",
        "callback_chooser",
        "before_callbacks",
        "before_each a",
        "execute a",
        "after_each a",
        "before_each b",
        "execute b",
        "after_each b",
        "after_callbacks",
        "after_object [1]",
        "after_processing",
    ]


def test_errors_in_per_task_hooks_are_handled_like_task_errors() -> None:
    class Mapper(ActionMapper):
        @staticmethod
        def before_each_callback(eng: Any, callback_func: Any, obj: Any) -> None:
            eng.halt("from a hook")

    class Factory(ProcessingFactory):
        @classproperty
        def action_mapper(cls) -> type[ActionMapper]:
            return Mapper

    class Engine(GenericWorkflowEngine):
        @classproperty
        def processing_factory(cls) -> type[ProcessingFactory]:
            return Factory

    eng = Engine()
    eng.callbacks.replace([append("a")])
    with pytest.raises(HaltProcessing, match="from a hook"):
        eng.process([[]])
    assert eng.state.callback_pos == [0]


def test_handlers_are_found_through_the_exception_base_classes() -> None:
    class WaitProcessing(HaltProcessing):
        pass

    def wait(obj: Any, eng: Any) -> None:
        raise WaitProcessing("waiting")

    eng = GenericWorkflowEngine()
    eng.callbacks.replace([wait])
    with pytest.raises(WaitProcessing):
        eng.process([1, 2], stop_on_halt=True)
    eng.process([1, 2], stop_on_halt=False)
    assert eng.has_completed


def test_a_handler_named_after_the_subclass_wins() -> None:
    class WaitProcessing(HaltProcessing):
        pass

    class Transitions(TransitionActions):
        @staticmethod
        def WaitProcessing(obj: Any, eng: Any, callbacks: Any, exc_info: Any) -> None:
            obj.append("waited")

    class Factory(ProcessingFactory):
        @classproperty
        def transition_exception_mapper(cls) -> type[TransitionActions]:
            return Transitions

    class Engine(GenericWorkflowEngine):
        @classproperty
        def processing_factory(cls) -> type[ProcessingFactory]:
            return Factory

    def wait(obj: Any, eng: Any) -> None:
        raise WaitProcessing("waiting")

    eng = Engine()
    eng.callbacks.replace([wait, append("never")])
    tokens: list[list[str]] = [[], []]
    eng.process(tokens)
    assert tokens == [["waited"], ["waited"]]


# -- nested engines ------------------------------------------------------------


def test_a_halt_in_a_child_engine_halts_the_parent_at_the_launching_task(
    make_engine: Any,
) -> None:
    child = make_engine([append("child"), halt_task])

    def run_child(obj: Any, eng: Any) -> None:
        child.process([obj])

    parent = make_engine([append("parent"), [run_child], append("never")])
    tokens: list[list[str]] = [[]]
    with pytest.raises(HaltProcessing):
        parent.process(tokens)
    assert tokens == [["parent", "child"]]
    assert parent.state.callback_pos == [1, 0]
    assert child.state.callback_pos == [1]


# -- introspection -------------------------------------------------------------


def test_introspection_before_any_run(make_engine: Any) -> None:
    eng = make_engine([append("a")])
    assert eng.current_object is None
    assert not eng.has_completed
    assert len(eng) == 0
    assert eng.current_taskname == "a"
    assert "token_pos=-1" in repr(eng)


def test_current_taskname_of_a_nested_list_is_the_list_str(make_engine: Any) -> None:
    eng = make_engine([[append("a")]])
    assert eng.current_taskname == str(eng.callbacks.get()[0])
    eng.state.callback_pos = [5]
    assert eng.current_taskname is None


def test_len_counts_the_tokens(make_engine: Any) -> None:
    eng = make_engine([append("a")])
    eng.process([[], [], []])
    assert len(eng) == 3


def test_debug_logging_names_every_task(make_engine: Any, caplog: pytest.LogCaptureFixture) -> None:
    eng = make_engine([append("a"), [append("b")]])
    with caplog.at_level(logging.DEBUG, logger="workflow"):
        eng.process([[]])
    assert "token 0: task a at [0]" in caplog.messages
    assert "token 0: task b at [1, 0]" in caplog.messages


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (1, ["jump", "end-of-task", "a", "b", "after"]),
        (2, ["jump", "end-of-task", "b", "after"]),
        (99, ["jump", "end-of-task", "after"]),
    ],
)
def test_jump_call_later_moves_when_the_task_returns(
    make_engine: Any, offset: int, expected: list[str]
) -> None:
    def jump(obj: Any, eng: Any) -> None:
        obj.append("jump")
        eng.jump_call_later(offset)
        obj.append("end-of-task")

    eng = make_engine([[jump, append("a"), append("b")], append("after")])
    tokens: list[list[str]] = [[]]
    eng.process(tokens)
    assert tokens == [expected]


def test_jump_call_later_backward_is_clamped_to_the_list_start(make_engine: Any) -> None:
    def back_once(obj: Any, eng: Any) -> None:
        if obj.count("a") == 1:
            eng.jump_call_later(-50)

    eng = make_engine([append("a"), back_once, append("b")])
    tokens: list[list[str]] = [[]]
    eng.process(tokens)
    assert tokens == [["a", "a", "b"]]
    with pytest.raises(TypeError, match="offset must be an int"):
        eng.jump_call_later("1")


def test_run_callbacks_runs_one_list_for_one_token(make_engine: Any) -> None:
    eng = make_engine([append("unused")])
    token: list[str] = []
    eng.run_callbacks([append("a"), [append("b")]], [token], token)
    assert token == ["a", "b"]
    assert eng.state.callback_pos == [1]


def test_hooks_and_signals_see_the_task_position_after_jump_call_later() -> None:
    from workflow import signals

    from .conftest import HookedEngine

    def jump(obj: Any, eng: Any) -> None:
        eng.jump_call_later(2)

    seen: list[tuple[str, list[int]]] = []

    def on_finished(sender: Any, task: Any, callback_pos: list[int], **kwargs: Any) -> None:
        seen.append((task.__name__, callback_pos))

    eng = HookedEngine()
    eng.callbacks.replace([[jump, append("skipped"), append("b")]])
    tokens: list[list[str]] = [[]]
    with signals.task_finished.connected_to(on_finished):
        eng.process(tokens)
    assert tokens == [["b"]]
    assert seen == [("jump", [0, 0]), ("b", [0, 2])]


def test_jump_task_moves_within_its_list_on_its_condition(make_engine: Any) -> None:
    from workflow.engine import JumpTask

    def is_big(obj: Any, eng: Any) -> bool:
        return bool(obj["n"] > 5)

    skip_if_big = JumpTask(2, is_big, name="skip_if_big")
    eng = make_engine([[skip_if_big, lambda o, e: o["log"].append("small")], JumpTask(1)])
    tokens = [{"n": 1, "log": []}, {"n": 9, "log": []}]
    eng.process(tokens)
    assert [t["log"] for t in tokens] == [["small"], []]
    assert repr(skip_if_big) == "<JumpTask skip_if_big +2 when is_big() is True>"
    assert repr(JumpTask(-3)) == "<JumpTask jump -3>"
    with pytest.raises(TypeError, match="offset must be an int"):
        JumpTask("2")  # type: ignore[arg-type]
