"""The task factories and helpers of workflow.patterns.utils."""

from __future__ import annotations

import builtins
import importlib
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from workflow.engine import GenericWorkflowEngine
from workflow.errors import HaltProcessing, WorkflowDefinitionError, WorkflowError
from workflow.patterns.controlflow import HALT
from workflow.patterns.utils import (
    CALLFUNC,
    DEBUG_CYCLE,
    EMPTY_CALL,
    ENG_GET,
    ENG_SET,
    ERROR,
    OBJ_GET,
    OBJ_SET,
    PROFILE,
    RUN_WF,
    TRY,
    debug_simple,
    universal_repeater,
    with_nice_docs,
)


def add(word: str) -> Callable[[Any, Any], None]:
    """A task appending ``word`` to a list token."""

    def task(obj: Any, eng: Any) -> None:
        obj.append(word)

    return task


def run(definition: Any, *tokens: Any, engine: Any = None) -> Any:
    """Run ``definition`` over ``tokens`` (default: one empty list) and return the engine."""
    eng = engine or GenericWorkflowEngine()
    eng.callbacks.replace(definition)
    eng.process(list(tokens) or [[]])
    return eng


class Failing:
    """A task that fails ``times`` times, then appends "ok"."""

    def __init__(self, times: int, error: Exception | None = None) -> None:
        self.times = times
        self.calls = 0
        self.error = error or ValueError("flaky")

    def __call__(self, obj: Any, eng: Any) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        obj.append("ok")
        return "result"


# -- with_nice_docs ----------------------------------------------------------------------


@with_nice_docs
def SAY(word: str, *, loud: bool = False, comment: str | None = None) -> Any:
    """Build a task saying ``word``."""

    def _say(obj: Any, eng: Any) -> None:
        obj.append(word.upper() if loud else word)

    return _say


@with_nice_docs
def BLOCK(*items: Any, comment: str | None = None) -> list[Any]:
    """Build a block."""
    return [*items]


def test_with_nice_docs_summarises_the_call_in_the_task_docstring() -> None:
    assert SAY("hi", loud=True).__doc__ == "SAY: args('hi'); kwargs(loud=True)."


def test_with_nice_docs_shows_lists_and_tuples_briefly() -> None:
    first = SAY("a")
    block = BLOCK(first, [], (), [1], (2,))
    assert block[0].__doc__ == f"BLOCK: args({first!r}, [], (), [...], (...)); kwargs()."


def test_with_nice_docs_uses_the_comment_and_does_not_pass_it_on() -> None:
    task = SAY("hi", comment="Greet the token")
    assert task.__doc__ == "Greet the token"
    obj: list[str] = []
    task(obj, None)
    assert obj == ["hi"]


def test_with_nice_docs_keeps_the_factory_name_and_doc() -> None:
    assert SAY.__name__ == "SAY"
    assert SAY.__doc__ == "Build a task saying ``word``."


def test_with_nice_docs_ignores_what_cannot_take_a_docstring() -> None:
    @with_nice_docs
    def EMPTY(*, comment: str | None = None) -> list[Any]:
        return []

    @with_nice_docs
    def BUILTIN(*, comment: str | None = None) -> Any:
        return len

    assert EMPTY() == []
    assert BUILTIN(comment="x") is len
    assert len.__doc__ != "x"


def test_every_factory_takes_a_comment_but_empty_call_is_a_plain_task() -> None:
    factories = [
        ENG_GET("k"),
        ENG_SET("k", 1),
        OBJ_GET("k"),
        OBJ_SET("k", 1),
        ERROR(),
        TRY(EMPTY_CALL),
        RUN_WF([EMPTY_CALL]),
        PROFILE(EMPTY_CALL),
        DEBUG_CYCLE("pass"),
        CALLFUNC(len),
    ]
    for task in factories:
        assert task.__doc__ is not None
        assert task.__doc__.endswith(").")
    assert ENG_SET("k", 1, comment="set k").__doc__ == "set k"
    assert EMPTY_CALL(None, None) is None
    with pytest.raises(TypeError):
        EMPTY_CALL(None, None, comment="x")  # type: ignore[call-arg]


# -- engine and token data --------------------------------------------------------------


def test_eng_set_and_eng_get_use_extra_data() -> None:
    results = []

    def keep(task: Any) -> Callable[[Any, Any], None]:
        def _keep(obj: Any, eng: Any) -> None:
            results.append(task(obj, eng))

        return _keep

    eng = run([keep(ENG_GET("a")), ENG_SET("a", 5), keep(ENG_GET("a"))])
    assert results == [None, 5]
    assert eng.extra_data == {"a": 5}


def test_obj_set_sets_a_key_of_the_token() -> None:
    eng = run([OBJ_SET("status", "done")], {})
    assert eng.objects == [{"status": "done"}]


def test_obj_get_with_one_key_returns_the_value_or_false() -> None:
    token = {"a": 0, "b": "x"}
    assert OBJ_GET("b")(token, None) == "x"
    assert OBJ_GET("a")(token, None) == 0
    assert OBJ_GET("missing")(token, None) is False
    assert OBJ_GET(5)([1, 2], None) is False


@pytest.mark.parametrize(
    ("cond", "keys", "expected"),
    [
        ("all", ["a", "b"], {"a": 1, "b": 2}),
        ("all", ["a", "z"], False),
        ("all", ["a", "zero"], False),
        ("any", ("zero", "b", "a"), 2),
        ("any", ["zero", "z"], False),
        ("many", ["a", "zero", "z"], {"a": 1}),
        ("many", ["zero"], {}),
    ],
)
def test_obj_get_with_several_keys_follows_cond(cond: str, keys: Any, expected: Any) -> None:
    token = {"a": 1, "b": 2, "zero": 0}
    assert OBJ_GET(keys, cond)(token, None) == expected


def test_obj_get_rejects_an_unknown_cond() -> None:
    with pytest.raises(WorkflowDefinitionError, match="cond must be one of all, any, many"):
        OBJ_GET("a", "some")


# -- ERROR ------------------------------------------------------------------------------


def test_error_fails_with_a_message_naming_the_calling_file() -> None:
    with pytest.raises(WorkflowError) as info:
        run([ERROR("no handler")])
    assert info.value.message.startswith(f"in {__file__}:")
    assert info.value.message.endswith(" : no handler")
    assert info.value.task == "ERROR"
    assert info.value.callback_pos == [0]


def test_error_lets_process_move_on_when_errors_do_not_stop_it() -> None:
    eng = GenericWorkflowEngine()
    eng.callbacks.replace([add("a"), ERROR(), add("b")])
    eng.process([[], []], stop_on_error=False)
    assert eng.objects == [["a"], ["a"]]


# -- TRY --------------------------------------------------------------------------------


def test_try_returns_the_result_of_a_first_success() -> None:
    task = Failing(0)
    assert TRY(task)([], None) == "result"
    assert task.calls == 1


def test_try_retries_until_the_call_succeeds() -> None:
    task = Failing(2)
    eng = run([TRY(task, retry=2)])
    assert eng.objects == [["ok"]]
    assert task.calls == 3


def test_try_reraises_the_error_after_the_retries_by_default() -> None:
    task = Failing(5)
    with pytest.raises(ValueError, match="flaky"):
        run([TRY(task)])
    assert task.calls == 2


def test_try_reraises_the_error_for_any_exception_class() -> None:
    with pytest.raises(ValueError, match="flaky"):
        run([TRY(Failing(5), retry=0, onfailure=WorkflowError)])


def test_try_raises_an_exception_instance_chained_to_the_error() -> None:
    with pytest.raises(WorkflowError, match="gave up") as info:
        run([TRY(Failing(5), onfailure=WorkflowError("gave up"))])
    assert isinstance(info.value.__cause__, ValueError)


def test_try_calls_a_callable_onfailure_with_obj_and_eng() -> None:
    calls = []

    def onfailure(obj: Any, eng: Any) -> None:
        calls.append((obj, eng))

    eng = run([TRY(Failing(5), onfailure=onfailure), add("after")])
    assert calls == [(eng.objects[0], eng)]
    assert eng.objects == [["after"]]


def test_try_ignores_the_failure_with_onfailure_none() -> None:
    eng = run([TRY(Failing(5), onfailure=None), add("after")])
    assert eng.objects == [["after"]]


def test_try_lets_transitions_through_without_retrying() -> None:
    task = Failing(5, error=HaltProcessing("wait"))
    with pytest.raises(HaltProcessing):
        run([TRY(task, retry=3)])
    assert task.calls == 1


def test_try_never_catches_keyboard_interrupt() -> None:
    calls = []

    def interrupted(obj: Any, eng: Any) -> None:
        calls.append(1)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        TRY(interrupted, retry=3, onfailure=None)([], None)
    assert calls == [1]


@pytest.mark.parametrize(("verbose", "level"), [(True, logging.WARNING), (False, logging.DEBUG)])
def test_try_logs_each_failure(caplog: pytest.LogCaptureFixture, verbose: bool, level: int) -> None:
    with caplog.at_level(logging.DEBUG), pytest.raises(ValueError, match="flaky"):
        run([TRY(Failing(5), retry=1, verbose=verbose)])
    failures = [record for record in caplog.records if "TRY: attempt" in record.message]
    assert [record.levelno for record in failures] == [level, level]
    assert failures[1].message.startswith("TRY: attempt 2 of 2 of")
    assert failures[0].exc_info is not None


def test_try_rejects_bad_arguments() -> None:
    with pytest.raises(WorkflowDefinitionError, match="wraps one callable task"):
        TRY([EMPTY_CALL])
    with pytest.raises(WorkflowDefinitionError, match="retry must be an int >= 0; got -1"):
        TRY(EMPTY_CALL, retry=-1)
    with pytest.raises(WorkflowDefinitionError, match="onfailure must be"):
        TRY(EMPTY_CALL, onfailure="stop")


# -- RUN_WF -----------------------------------------------------------------------------


def test_run_wf_runs_the_workflow_over_the_token_as_its_token_list() -> None:
    eng = run([RUN_WF([add("child")])], [[], []])
    assert eng.objects == [[["child"], ["child"]]]


def test_run_wf_runs_the_tokens_of_a_data_connector() -> None:
    def authors(obj: Any, eng: Any) -> list[Any]:
        return obj["authors"]

    eng = run([RUN_WF([add("seen")], data_connector=authors)], {"authors": [[], []]})
    assert eng.objects == [{"authors": [["seen"], ["seen"]]}]


def test_run_wf_keeps_its_child_engine_and_reuses_it_out_of_extra_data() -> None:
    children = []

    def remember(obj: Any, eng: Any) -> None:
        children.append(eng)

    eng = run([RUN_WF([remember])], [[]], [[]])
    assert children[0] is children[1]
    assert "RUN_WF" not in eng.extra_data
    assert type(children[0]) is GenericWorkflowEngine


def test_run_wf_reinit_makes_a_new_child_each_time() -> None:
    children = []

    def remember(obj: Any, eng: Any) -> None:
        children.append(eng)

    run([RUN_WF([remember], reinit=True)], [[]], [[]])
    assert children[0] is not children[1]


def test_run_wf_without_outkey_stores_nothing() -> None:
    eng = run([RUN_WF([add("child")], outkey=None)], [[]])
    assert "RUN_WF" not in eng.extra_data
    assert eng.objects == [[["child"]]]


def test_two_run_wf_tasks_with_the_same_outkey_run_their_own_workflow() -> None:
    eng = run([RUN_WF([add("first")]), RUN_WF([add("second")])], [[]])
    assert eng.objects == [[["first", "second"]]]


def test_run_wf_builds_the_child_from_engine() -> None:
    class Child(GenericWorkflowEngine):
        pass

    engines = []

    def remember(obj: Any, eng: Any) -> None:
        engines.append(eng)

    run([RUN_WF([remember], engine=Child)], [[]])
    assert [type(child) for child in engines] == [Child]


def test_run_wf_copies_pass_eng_keys_without_consuming_the_list() -> None:
    seen = []

    def look(obj: Any, eng: Any) -> None:
        seen.append(eng.extra_data["user"])

    keys = ["user"]
    definition = [ENG_SET("user", "ann"), RUN_WF([look], pass_eng=keys, reinit=True)]
    run(definition, [[]], [[]])
    assert seen == ["ann", "ann"]
    assert keys == ["user"]


def test_run_wf_copies_pass_eng_once_unless_pass_always() -> None:
    seen = []

    def look(obj: Any, eng: Any) -> None:
        seen.append(eng.extra_data["n"])

    def bump(obj: Any, eng: Any) -> None:
        eng.extra_data["n"] = eng.extra_data.get("n", 0) + 1

    run([bump, RUN_WF([look], pass_eng=["n"])], [[]], [[]])
    run([bump, RUN_WF([look], pass_eng=["n"], pass_always=True)], [[]], [[]])
    assert seen == [1, 1, 1, 2]


def test_run_wf_names_a_missing_pass_eng_key() -> None:
    with pytest.raises(WorkflowError, match="RUN_WF: no key 'user' in the engine's extra_data"):
        run([RUN_WF([add("child")], pass_eng=["user"])], [[]])


def test_a_halt_in_run_wf_halts_the_calling_engine() -> None:
    with pytest.raises(HaltProcessing):
        run([RUN_WF([HALT()]), add("never")], [[]])


# -- PROFILE ----------------------------------------------------------------------------


def test_profile_writes_the_profile_and_one_report_per_key(tmp_path: Path) -> None:
    output = tmp_path / "run.prof"
    eng = run([PROFILE(add("a"), output=str(output), stats=["calls", "time"])])
    assert eng.objects == [["a"]]
    assert output.stat().st_size > 0
    for key in ("calls", "time"):
        assert "function calls" in (tmp_path / f"run.prof.stats-{key}").read_text()


def test_profile_runs_a_list_in_a_child_engine_and_prints_without_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    engines = []

    def remember(obj: Any, eng: Any) -> None:
        engines.append(eng)

    eng = run([PROFILE([remember, add("a")], stats=["cumulative"])])
    assert eng.objects == [["a"]]
    assert engines[0] is not eng
    assert capsys.readouterr().out.count("function calls") == 1


def test_profile_returns_the_result_and_writes_the_profile_even_on_failure(
    tmp_path: Path,
) -> None:
    output = tmp_path / "fail.prof"
    assert PROFILE(Failing(0), output=str(output))([], None) == "result"
    with pytest.raises(ValueError, match="flaky"):
        PROFILE(Failing(1), output=str(output), stats=[])([], None)
    assert output.exists()


# -- DEBUG_CYCLE ------------------------------------------------------------------------


def test_debug_cycle_runs_a_statement_once_without_a_stopper() -> None:
    eng = run([DEBUG_CYCLE("obj.append(word)", word="hi")])
    assert eng.objects == [["hi"]]


def test_debug_cycle_repeats_until_the_stopper_says_stop() -> None:
    def stopper(obj: Any, eng: Any) -> bool:
        return len(obj) == 3

    eng = run(
        [DEBUG_CYCLE(add("round"), setup="eng.extra_data['setup'] = 1", debug_stopper=stopper)]
    )
    assert eng.objects == [["round", "round", "round"]]
    assert eng.extra_data["setup"] == 1


def test_debug_cycle_runs_a_callable_setup_once() -> None:
    eng = run([DEBUG_CYCLE(add("stmt"), setup=add("setup"))])
    assert eng.objects == [["setup", "stmt"]]


def test_debug_cycle_calls_onerror_and_goes_on() -> None:
    errors = []

    def onerror(obj: Any, eng: Any) -> None:
        errors.append(obj)

    eng = run([DEBUG_CYCLE("1 / 0", onerror=onerror), add("after")])
    assert errors == [eng.objects[0]]
    assert eng.objects == [["after"]]


def test_debug_cycle_reraises_without_onerror_or_stopper() -> None:
    with pytest.raises(ZeroDivisionError):
        run([DEBUG_CYCLE("1 / 0")])


def test_debug_cycle_logs_errors_and_cycles_while_the_stopper_says_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    task = Failing(2)

    def stopper(obj: Any, eng: Any) -> bool:
        return obj == ["ok"]

    with caplog.at_level(logging.WARNING):
        eng = run([DEBUG_CYCLE(task, debug_stopper=stopper)])
    assert eng.objects == [["ok"]]
    assert task.calls == 3
    assert [r.message for r in caplog.records] == [
        "DEBUG_CYCLE: round 1 failed",
        "DEBUG_CYCLE: round 2 failed",
    ]


def test_debug_cycle_lets_transitions_through() -> None:
    with pytest.raises(HaltProcessing):
        run([DEBUG_CYCLE(HALT(), onerror=EMPTY_CALL)])


# -- CALLFUNC ---------------------------------------------------------------------------


def gather(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
    return args, kwargs


def test_callfunc_passes_arguments_from_everywhere_and_stores_the_result() -> None:
    task = CALLFUNC(
        gather,
        outkey="out",
        args=[1],
        oeargs=["Otitle", "Elang"],
        ekeys={"lang": "language"},
        okeys={"title": "name"},
        flag=True,
    )
    eng = GenericWorkflowEngine()
    eng.extra_data["lang"] = "en"
    token = {"title": "T"}
    result = task(token, eng)
    expected = ((1, "T", "en"), {"flag": True, "language": "en", "name": "T"})
    assert result == expected
    assert token["out"] == expected


def test_callfunc_gives_each_call_fresh_arguments() -> None:
    calls = []

    def record(*args: Any) -> None:
        calls.append(args)

    run([CALLFUNC(record, args=(0,), oeargs=["On"])], {"n": 1}, {"n": 2})
    assert calls == [(0, 1), (0, 2)]


def test_callfunc_resolves_a_dotted_path() -> None:
    token = {"words": ["b", "a"]}
    CALLFUNC("builtins.sorted", outkey="sorted", oeargs=["Owords"])(token, None)
    assert token["sorted"] == ["a", "b"]


def test_callfunc_names_a_missing_key_instead_of_exiting() -> None:
    with pytest.raises(WorkflowError, match=r"CALLFUNC: no key 'x' in the token \(its keys: 'a'\)"):
        CALLFUNC(gather, oeargs=["Ox"])({"a": 1}, GenericWorkflowEngine())
    with pytest.raises(WorkflowError, match=r"no key 'x' in the token \(its keys: none\)"):
        CALLFUNC(gather, okeys={"x": "y"})([], GenericWorkflowEngine())
    with pytest.raises(WorkflowError, match="no key 'lang' in the engine's extra_data"):
        CALLFUNC(gather, ekeys={"lang": "language"})({}, GenericWorkflowEngine())


def test_callfunc_rejects_bad_arguments() -> None:
    with pytest.raises(WorkflowDefinitionError, match="callable or a dotted path"):
        CALLFUNC("sorted")
    with pytest.raises(WorkflowDefinitionError, match="got 'title'"):
        CALLFUNC(gather, oeargs=["title"])


def test_callfunc_reports_a_path_that_does_not_import() -> None:
    with pytest.raises(WorkflowError, match=r"CALLFUNC: cannot import 'builtins\.nothing_here'"):
        CALLFUNC("builtins.nothing_here")({}, None)


# -- reloading helpers --------------------------------------------------------------------

FLAKY_SOURCE = """
calls = []

def compute(x):
    calls.append(x)
    {body}
"""


@pytest.fixture
def flaky_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A module ``flaky_mod`` whose ``compute`` fails until its source is fixed."""
    name = "flaky_mod"
    path = tmp_path / f"{name}.py"

    def write(body: str) -> None:
        path.write_text(FLAKY_SOURCE.format(body=body))

    write("raise ValueError('broken')")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    module.write = write  # type: ignore[attr-defined]
    yield module
    sys.modules.pop(name, None)


def test_debug_simple_returns_the_result_of_a_success() -> None:
    assert debug_simple(gather, 1, k=2) == ((1,), {"k": 2})


def test_debug_simple_reraises_without_an_interactive_input(flaky_module: Any) -> None:
    with pytest.raises(ValueError, match="broken"):
        debug_simple(flaky_module.compute, 1)


def test_debug_simple_reloads_the_module_and_calls_the_new_function(
    flaky_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = []

    def fix_then_enter(prompt: str) -> str:
        prompts.append(prompt)
        flaky_module.write("return x * 10  # fixed")
        return ""

    monkeypatch.setattr(builtins, "input", fix_then_enter)
    assert debug_simple(flaky_module.compute, 4) == 40
    assert prompts == ["Fix flaky_mod, then press Enter to reload it and call again: "]


def test_debug_simple_retries_a_function_whose_module_is_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    task = Failing(1)

    def call() -> str:
        return task([], None)

    call.__module__ = "no_such_module_anywhere"
    monkeypatch.setattr(builtins, "input", lambda prompt: "")
    assert debug_simple(call) == "result"


def test_debug_simple_lets_transitions_through() -> None:
    def halt() -> None:
        raise HaltProcessing("stop")

    with pytest.raises(HaltProcessing):
        debug_simple(halt)


def test_universal_repeater_calls_once_without_a_stopper(flaky_module: Any) -> None:
    flaky_module.write("return x + 1")
    importlib.reload(flaky_module)
    assert universal_repeater("flaky_mod", "compute", None, 1) == 2
    with pytest.raises(ZeroDivisionError):
        universal_repeater(builtins, "divmod", None, 1, 0)


def test_universal_repeater_reloads_until_the_stopper_says_stop(flaky_module: Any) -> None:
    answers = iter([False, True])

    def stopper() -> bool:
        flaky_module.write("return x * 2  # fixed")
        return next(answers)

    assert universal_repeater(flaky_module, flaky_module.compute, stopper, 21) == 42


def test_universal_repeater_calls_again_after_a_success_until_told_to_stop(
    flaky_module: Any,
) -> None:
    flaky_module.write("return len(calls)")
    importlib.reload(flaky_module)
    answers = iter([False, False, True])
    result = universal_repeater("flaky_mod", "compute", lambda: next(answers), 0)
    assert next(answers, "all used") == "all used"  # three calls
    assert result == 1  # each reload starts the module afresh


def test_universal_repeater_raises_the_last_error_when_told_to_stop(flaky_module: Any) -> None:
    answers = iter([False, True])
    with pytest.raises(ValueError, match="broken"):
        universal_repeater(flaky_module, "compute", lambda: next(answers), 1)


def test_universal_repeater_lets_transitions_through() -> None:
    with pytest.raises(HaltProcessing):
        universal_repeater(sys.modules[__name__], "raise_halt", lambda: False)


def raise_halt() -> None:
    raise HaltProcessing("stop")


def test_callfunc_debug_without_stopper_uses_debug_simple(
    flaky_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(builtins, "input", lambda prompt: flaky_module.write("return x - 1"))
    token = {"x": 5}
    CALLFUNC(flaky_module.compute, outkey="out", debug=True, oeargs=["Ox"])(token, None)
    assert token["out"] == 4


def test_callfunc_debug_with_stopper_reloads_until_it_says_stop(flaky_module: Any) -> None:
    asked = []

    def stopper(obj: Any, eng: Any) -> bool:
        asked.append((obj, eng))
        flaky_module.write("return x * 3  # fixed")
        return len(asked) == 2

    eng = GenericWorkflowEngine()
    token = {"x": 2}
    task = CALLFUNC(flaky_module.compute, outkey="out", debug=True, stopper=stopper, oeargs=["Ox"])
    task(token, eng)
    assert token["out"] == 6
    assert asked == [(token, eng), (token, eng)]
