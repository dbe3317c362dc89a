"""The "Loops and interrupts" example of the Invenio workflow documentation, run as written.

In Invenio ``workflow`` 2.1.6 it crashed after ``new data: [0, 1]`` with
``KeyError: 'previous_data'`` (issue #39); this test pins its documented
transcript line by line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from workflow.engine import GenericWorkflowEngine
from workflow.errors import HaltProcessing
from workflow.patterns.controlflow import CMP, FOR, IF_ELSE

DOCUMENTED_TRANSCRIPT = """\
new data: [0]
new data: [0, 1]
Restarting the engine
new data: [0, 1, 0]
new data: [0, 1, 0, 1]
new data: [0, 1, 0, 1, 1]
Raising HaltProcessing
new data: [0, 1, 0]
new data: [0, 1, 0, 1]
new data: [0, 1, 0, 1, 1]
Raising HaltProcessing
new data: [0, 1, 0, 1, 0]
new data: [0, 1, 0, 1, 0, 1]
new data: [0, 1, 0, 1, 0, 1, 1]
Raising HaltProcessing
Done! [[0, 1, 0, 1, 1], [0, 1, 0, 1, 1], [0, 1, 0, 1, 0, 1, 1]]
"""


def append_from(key: str) -> Callable[[Any, Any], None]:
    """Append data from a given `key` of the engine's `extra_data`."""

    def _append_from(obj: Any, eng: Any) -> None:
        obj.append(eng.extra_data[key])
        print("new data:", obj)

    return _append_from


def interrupt_workflow(obj: Any, eng: Any) -> None:
    """Raise the `HaltProcessing` exception."""
    print("Raising HaltProcessing")
    eng.halt("interrupting this workflow.")


def restart_workflow(obj: Any, eng: Any) -> None:
    """Restart the engine with the current object, from the first task."""
    print("Restarting the engine")
    eng.restart("current", "first")


def test_loops_and_interrupts_example_prints_the_documented_transcript(
    capsys: pytest.CaptureFixture[str],
) -> None:
    my_workflow = [
        FOR(range(2), "my_current_value", [append_from("my_current_value")]),
        IF_ELSE(
            CMP((lambda o, e: o), [0, 1, 0, 1], "<"),
            [restart_workflow],
            [append_from("my_current_value"), interrupt_workflow],
        ),
    ]
    my_engine = GenericWorkflowEngine()
    my_engine.callbacks.replace(my_workflow)

    try:
        my_engine.process([[], [0, 1], [0, 1, 0, 1]])
    except HaltProcessing:
        while True:
            try:
                my_engine.restart("next", "first")
            except HaltProcessing:
                continue
            else:
                print("Done!", my_engine.objects)
                break

    printed = capsys.readouterr().out.splitlines()
    expected = DOCUMENTED_TRANSCRIPT.splitlines()
    for number, (line, documented) in enumerate(zip(printed, expected, strict=False), start=1):
        assert line == documented, f"line {number} differs"
    assert len(printed) == len(expected)


def test_loops_and_interrupts_example_leaves_no_loop_state_behind() -> None:
    eng = GenericWorkflowEngine()
    eng.callbacks.replace([FOR(range(2), "value", [append_from("value")])])
    eng.process([[]])
    assert eng.extra_data == {"_Iterators": {}, "value": 1}
