"""The flat layout the engine runs a tree as (workflow._program), seen from outside."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from workflow import GenericWorkflowEngine
from workflow._program import Block, Program
from workflow.errors import HaltProcessing, WorkflowError
from workflow.patterns import IF_ELSE, WHILE

from .conftest import append


def test_registered_lists_are_blocks_that_behave_as_lists() -> None:
    eng = GenericWorkflowEngine()
    eng.callbacks.replace([append("a"), [append("b")]])
    tree = eng.callbacks.get()
    assert isinstance(tree, Block)
    assert isinstance(tree[1], Block)
    assert tree == [tree[0], [tree[1][0]]]
    copy = pickle.loads(pickle.dumps(Block([1, [2]])))
    assert copy == [1, [2]]
    assert type(copy) is Block


def test_a_program_lays_out_tasks_and_jumps_with_their_paths() -> None:
    a, b, c = append("a"), append("b"), append("c")
    tree = Block([a, Block([b, Block([])]), c])
    program = Program(tree)
    assert program.code == [a, b, c]
    assert program.paths == [(0,), (1, 0), (2,)]
    assert program.slot([1, 1]) == 2  # an empty list goes on after itself
    assert program.slot([1, 9]) == 2  # past the end of a list: after it
    assert program.slot([3]) == 3  # past the end of the tree: done
    with pytest.raises(WorkflowError, match=r"cannot resume at callback_pos \[0, 1\]"):
        program.slot([0, 1])


def test_a_list_inside_itself_is_refused_with_its_position() -> None:
    loop: list[Any] = [append("a")]
    loop.append(loop)
    eng = GenericWorkflowEngine()
    eng.callbacks._definitions["*"] = loop  # replace() would refuse to clean it first
    with pytest.raises(WorkflowError, match=r"inside itself at callback_pos \[1\]"):
        eng.process([[]])


def test_position_is_a_tuple_of_the_running_task_and_changes_nothing() -> None:
    seen = []

    def look(obj: Any, eng: Any) -> None:
        seen.append(eng.state.position)

    eng = GenericWorkflowEngine()
    eng.callbacks.replace([append("a"), IF_ELSE(lambda o, e: True, [look], []), look])
    eng.process([[], []])
    assert seen == [(1, 1, 0), (2,), (1, 1, 0), (2,)]
    assert eng.state.position == (0,)


def test_a_task_assigning_callback_pos_moves_the_run_there() -> None:
    def skip_to_last(obj: Any, eng: Any) -> None:
        eng.state.callback_pos = [2]  # the run goes on after this position

    eng = GenericWorkflowEngine()
    eng.callbacks.replace([skip_to_last, append("skipped"), append("skipped too"), append("z")])
    eng.process([[]])
    assert eng.objects == [["z"]]


def test_a_tree_from_callback_chooser_is_seen_again_when_changed_between_tokens() -> None:
    tree: list[Any] = [append("a")]

    class Routing(GenericWorkflowEngine):
        def callback_chooser(self, obj: Any) -> Any:
            return tree

    def grow(obj: Any, eng: Any) -> None:
        tree.append(append("b"))

    tree.append(grow)
    eng = Routing()
    eng.callbacks.replace([append("unused")])
    eng.process([[], []])
    # The plain list is checked before each token: the second token sees "b".
    assert eng.objects == [["a"], ["a", "b"]]


def test_a_task_running_the_engine_again_keeps_the_outer_position() -> None:
    positions = []

    def nested(obj: Any, eng: Any) -> None:
        eng.run_callbacks([append("inner")], eng.objects, obj, indent=1)
        positions.append(eng.state.position)

    eng = GenericWorkflowEngine()
    eng.callbacks.replace([append("a"), nested, append("b")])
    eng.process([[]])
    assert eng.objects == [["a", "inner", "b"]]
    assert positions == [(1,)]


def test_a_halt_inside_a_loop_keeps_its_path_and_resumes_there() -> None:
    def halt_in_second_round(obj: Any, eng: Any) -> None:
        obj.append("body")
        if obj.count("body") == 2 and "halted" not in obj:
            obj.append("halted")
            eng.halt("round two")

    eng = GenericWorkflowEngine()
    eng.callbacks.replace([WHILE(lambda o, e: o.count("body") < 3, [halt_in_second_round])])
    with pytest.raises(HaltProcessing):
        eng.process([[]])
    assert eng.state.callback_pos == [0, 1]
    eng.restart("current", "next")
    assert eng.objects == [["body", "body", "halted", "body"]]


def test_a_halt_in_a_nested_run_keeps_the_nested_position() -> None:
    def nested(obj: Any, eng: Any) -> None:
        eng.run_callbacks([append("inner"), _halt], eng.objects, obj, indent=1)

    eng = GenericWorkflowEngine()
    eng.callbacks.replace([append("a"), nested, append("b")])
    with pytest.raises(HaltProcessing):
        eng.process([[]])
    assert eng.state.callback_pos == [1, 1]


def _halt(obj: Any, eng: Any) -> None:
    eng.halt("inside")


def test_debug_logging_turned_on_between_passes_is_honoured(
    caplog: pytest.LogCaptureFixture,
) -> None:
    eng = GenericWorkflowEngine()
    eng.callbacks.replace([append("a")])
    eng.process([[]])
    with caplog.at_level("DEBUG", logger="workflow"):
        eng.process([[]])
    assert [r.getMessage() for r in caplog.records if "task a" in r.getMessage()] == [
        "token 0: task a at [0]"
    ]


def test_a_processing_factory_chosen_per_instance_is_asked_each_pass() -> None:
    from workflow.engine import ProcessingFactory

    calls = []

    class Counting(ProcessingFactory):
        @staticmethod
        def before_object(eng: Any, objects: Any, obj: Any) -> None:
            calls.append(obj)

    class PerInstance(GenericWorkflowEngine):
        counting = False

        @property
        def processing_factory(self) -> Any:  # type: ignore[override]
            return Counting if self.counting else ProcessingFactory

    eng = PerInstance()
    eng.callbacks.replace([append("a")])
    eng.process([["x"]])
    eng.counting = True
    eng.process([["y"]])
    assert calls == [["y", "a"]]


def test_engines_made_in_many_threads_while_definitions_change_are_all_told() -> None:
    import threading

    made: list[GenericWorkflowEngine] = []
    errors: list[BaseException] = []

    def make() -> None:
        try:
            for _ in range(200):
                made.append(GenericWorkflowEngine())
        except BaseException as error:  # pragma: no cover - what the test looks for
            errors.append(error)

    def change() -> None:
        try:
            tree = Block([])
            for _ in range(200):
                tree.append(append("x"))
        except BaseException as error:  # pragma: no cover - what the test looks for
            errors.append(error)

    threads = [threading.Thread(target=make) for _ in range(4)]
    threads.append(threading.Thread(target=change))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(made) == 800
    Block([]).append(1)  # one more change: every engine is told
    assert all(eng.state._attention for eng in made)
