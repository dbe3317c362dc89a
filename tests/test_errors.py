"""Exceptions: working str(), args kept, pickle round trip (bug B1 of 2.1.6)."""

from __future__ import annotations

import ast
import builtins
import pickle
from pathlib import Path

import pytest

from workflow import errors
from workflow.errors import (
    HaltProcessing,
    WorkflowDefinitionError,
    WorkflowError,
    WorkflowObjectStatusError,
    WorkflowTransition,
    with_str,
)

TRANSITIONS = [
    errors.StopProcessing,
    errors.HaltProcessing,
    errors.ContinueNextToken,
    errors.JumpToken,
    errors.JumpTokenForward,
    errors.JumpTokenBack,
    errors.JumpCall,
    errors.JumpCallForward,
    errors.JumpCallBack,
    errors.BreakFromThisLoop,
    errors.SkipToken,
    errors.AbortProcessing,
]


@pytest.mark.parametrize("cls", TRANSITIONS)
def test_transitions_derive_from_workflow_transition(cls: type[Exception]) -> None:
    assert issubclass(cls, WorkflowTransition)


@pytest.mark.parametrize(
    "cls",
    [WorkflowError, WorkflowDefinitionError, WorkflowObjectStatusError, errors.WorkflowAPIError],
)
def test_real_errors_are_not_transitions(cls: type[Exception]) -> None:
    assert not issubclass(cls, WorkflowTransition)


INVENIO_EXCEPTIONS = {
    "WorkflowTransition",
    "StopProcessing",
    "HaltProcessing",
    "ContinueNextToken",
    "JumpToken",
    "JumpTokenForward",
    "JumpTokenBack",
    "JumpCall",
    "JumpCallForward",
    "JumpCallBack",
    "BreakFromThisLoop",
    "SkipToken",
    "AbortProcessing",
    "WorkflowError",
    "WorkflowDefinitionError",
    "WorkflowObjectStatusError",
    "WorkflowAPIError",
}


def test_the_module_exports_the_seventeen_invenio_exceptions_and_with_str() -> None:
    assert len(INVENIO_EXCEPTIONS) == 17
    assert set(errors.__all__) >= INVENIO_EXCEPTIONS
    assert "with_str" in errors.__all__


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (errors.DatabaseUnavailableError, (errors.StorageError,)),
        (errors.WorkflowLockedError, (errors.StorageError,)),
        (errors.WorkflowNotFoundError, (errors.StorageError, LookupError)),
        (errors.TokenEncodingError, (errors.StorageError, TypeError)),
    ],
)
def test_storage_errors_are_not_workflow_errors(cls: type, bases: tuple[type, ...]) -> None:
    assert all(issubclass(cls, base) for base in bases)
    assert not issubclass(cls, WorkflowError)


def test_storage_error_names_its_context() -> None:
    exc = errors.WorkflowLockedError("locked", workflow="abc", token=2, operation="resume")
    assert str(exc) == "locked (workflow 'abc', token 2, during 'resume')"
    assert repr(exc) == "WorkflowLockedError('locked', workflow='abc', token=2, operation='resume')"
    assert str(errors.StorageError("plain")) == "plain"


def test_halt_processing_has_a_str_args_and_repr() -> None:
    exc = HaltProcessing("need review", action="approve", payload={"id": 7})
    assert str(exc) == "need review"
    assert exc.args == ("need review",)
    assert repr(exc) == "HaltProcessing('need review', action='approve', payload={'id': 7})"


def test_workflow_error_str_names_its_context() -> None:
    exc = WorkflowError("task failed", "wf-1", 3, callback_pos=[1, 0], task="enrich")
    assert exc.args == ("task failed",)
    assert str(exc) == ("task failed (workflow 'wf-1', token 3, task 'enrich', position [1, 0])")
    assert str(WorkflowError("plain")) == "plain"
    assert repr(WorkflowError("plain", id_object=2)) == "WorkflowError('plain', id_object=2)"


def test_definition_and_status_errors_have_a_str() -> None:
    assert str(WorkflowDefinitionError("unknown", "flow")) == "unknown (workflow 'flow')"
    assert str(WorkflowDefinitionError("bad")) == "bad"
    assert (
        repr(WorkflowDefinitionError("bad", "f"))
        == "WorkflowDefinitionError('bad', workflow_name='f')"
    )
    exc = WorkflowObjectStatusError("refused", 5, "HALTED")
    assert str(exc) == "refused (token 5, status 'HALTED')"
    assert repr(exc) == "WorkflowObjectStatusError('refused', id_object=5, obj_status='HALTED')"


@pytest.mark.parametrize(
    "exc",
    [
        HaltProcessing("m", action="a", payload=[1]),
        WorkflowError("m", "wf", 2, {"k": 1}, callback_pos=[0, 1], task="t"),
        WorkflowDefinitionError("m", "wf", payload=3),
        WorkflowObjectStatusError("m", 1, 2),
        errors.JumpToken(3),
        errors.StopProcessing(),
        errors.WorkflowAPIError("m"),
        errors.WorkflowLockedError("m", workflow="w", token=1, operation="resume"),
        errors.TokenEncodingError("m", token=3),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_every_exception_survives_a_pickle_round_trip(exc: Exception) -> None:
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is type(exc)
    assert copy.args == exc.args
    assert repr(copy) == repr(exc)
    assert vars(copy) == vars(exc)


def test_with_str_gives_a_working_str() -> None:
    @with_str(("message", ("code",)))
    class Custom(Exception):
        def __init__(self, message: str, code: int) -> None:
            super().__init__(message)
            self.message = message
            self.code = code

    assert str(Custom("bad", 4)) == "Custom('bad', code=4)"


# -- one catch-all ----------------------------------------------------------------------

PACKAGE = Path(errors.__file__).parent
BUILTIN_EXCEPTIONS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}
# Raised on purpose as they are: the interpreter's own signals, asserts, and
# AttributeError, which the attribute protocol (an immutable FlowError) requires.
ALLOWED_BUILTINS = {"KeyboardInterrupt", "SystemExit", "AssertionError", "AttributeError"}


def _error_classes() -> list[type[BaseException]]:
    return [
        value
        for value in vars(errors).values()
        if isinstance(value, type)
        and issubclass(value, BaseException)
        and value.__module__ == errors.__name__
    ]


def test_every_error_of_the_library_derives_from_one_base_and_no_transition_does() -> None:
    for cls in _error_classes():
        if cls is errors.WorkflowInterrupted:  # a KeyboardInterrupt: no except Exception takes it
            assert not issubclass(cls, Exception)
            assert issubclass(cls, KeyboardInterrupt)
        elif issubclass(cls, errors.WorkflowTransition):
            assert not issubclass(cls, errors.WorkflowBaseError), cls
        else:
            assert issubclass(cls, errors.WorkflowBaseError), cls


def test_the_invenio_errors_keep_deriving_from_exception() -> None:
    for name in ("WorkflowError", "WorkflowDefinitionError", "WorkflowObjectStatusError"):
        cls = getattr(errors, name)
        assert issubclass(cls, Exception)
        assert issubclass(cls, errors.WorkflowBaseError)
    assert issubclass(errors.WorkflowAPIError, Exception)


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.WorkflowValueError, ValueError),
        (errors.WorkflowTypeError, TypeError),
        (errors.WorkflowKeyError, KeyError),
        (errors.WorkflowIndexError, IndexError),
        (errors.WorkflowTimeoutError, TimeoutError),
    ],
)
def test_errors_that_were_builtin_exceptions_still_are(
    cls: type[Exception], builtin: type[Exception]
) -> None:
    assert issubclass(cls, builtin)
    error = cls("what went wrong")
    assert str(error) == "what went wrong"
    assert pickle.loads(pickle.dumps(error)).args == ("what went wrong",)


def test_the_library_raises_no_bare_builtin_exception() -> None:
    """Every ``raise X(...)`` in the package raises one of ours (so one except catches all)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if (
                isinstance(target, ast.Name)
                and target.id in BUILTIN_EXCEPTIONS
                and target.id not in ALLOWED_BUILTINS
            ):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {target.id}")
    assert found == []
