"""PARALLEL_SPLIT and RUN_WF work with every engine, the persistent ones included."""

from __future__ import annotations

from typing import Any

from workflow.patterns import PARALLEL_SPLIT, RUN_WF

from .modes import Mode, Recorder, items
from .tasks import TOKENS


def test_parallel_split_runs_every_branch_for_every_token(mode: Mode) -> None:
    rec = Recorder()
    a, p, q, r, z = rec.tasks("a", "p", "q", "r", "z")
    eng = mode.engine([a, PARALLEL_SPLIT(p, [q, r]), z])

    mode.process(eng, items())

    for token in TOKENS:
        ran = rec.sequence(token)
        assert ran[0] == "a"
        assert ran[-1] == "z"
        assert sorted(ran[1:-1]) == ["p", "q", "r"]
        assert ran.index("q") < ran.index("r")
    for payload in mode.payloads(eng):
        assert payload[1] == "a"
        assert payload[-1] == "z"
        assert sorted(payload[2:-1]) == ["p", "q", "r"]


def test_run_wf_runs_the_child_workflow_for_every_token(mode: Mode) -> None:
    rec = Recorder()
    a, m, n, z = rec.tasks("a", "m", "n", "z")

    def just_this_token(obj: Any, eng: Any) -> list[Any]:
        return [obj]

    eng = mode.engine([a, RUN_WF([m, n], data_connector=just_this_token), z])

    mode.process(eng, items())

    assert rec.sequences(TOKENS) == {token: ["a", "m", "n", "z"] for token in TOKENS}
    assert [payload[1:] for payload in mode.payloads(eng)] == [["a", "m", "n", "z"]] * 3
