"""Jumps and transitions: tasks moving to another task, token, or out of the run.

:func:`TASK_JUMP_BWD`, :func:`TASK_JUMP_FWD` and :func:`TASK_JUMP_IF` move
inside the current block; :func:`BREAK` leaves it; :func:`OBJ_NEXT`,
:func:`OBJ_JUMP_FWD` and :func:`OBJ_JUMP_BWD` go on with another token;
:func:`STOP` and :func:`HALT` end the run. They are offered by
:mod:`workflow.patterns.controlflow`.
"""

from __future__ import annotations

from typing import Any

from ..engine import GenericWorkflowEngine
from ..errors import JumpTokenBack, JumpTokenForward, WorkflowDefinitionError
from ._nice_docs import Task, with_nice_docs


@with_nice_docs
def TASK_JUMP_BWD(step: int = -1, *, comment: str | None = None) -> Task:
    """Build a task going back in the current block: ``eng.jump_call(step)``.

    ``TASK_JUMP_BWD(-1)`` runs the previous task again. Example (``fetch``
    runs again while ``failed`` holds)::

        [fetch, TASK_JUMP_IF(succeeded, 2), TASK_JUMP_BWD(-2), store]
    """

    def _task_jump_bwd(obj: Any, eng: GenericWorkflowEngine) -> None:
        eng.jump_call(step)

    return _task_jump_bwd


@with_nice_docs
def TASK_JUMP_FWD(step: int = 1, *, comment: str | None = None) -> Task:
    """Build a task going ``step`` tasks forward in the current block.

    ``TASK_JUMP_FWD(1)`` is the plain next task, ``TASK_JUMP_FWD(2)`` skips
    one. Example (``draft_only`` never runs)::

        [parse, TASK_JUMP_FWD(2), draft_only, publish]
    """

    def _task_jump_fwd(obj: Any, eng: GenericWorkflowEngine) -> None:
        eng.jump_call(step)

    return _task_jump_fwd


@with_nice_docs
def TASK_JUMP_IF(cond: Task, step: int, *, comment: str | None = None) -> Task:
    """Build a task jumping ``step`` tasks (back when negative) if ``cond(obj, eng)`` is true.

    Otherwise the next task runs. Example::

        [TASK_JUMP_IF(is_draft, 2), publish, archive]
    """

    def _task_jump_if(obj: Any, eng: GenericWorkflowEngine) -> None:
        if cond(obj, eng):
            eng.jump_call(step)

    return _task_jump_if


@with_nice_docs
def BREAK(*, comment: str | None = None) -> Task:
    """Build a task leaving the innermost block; the block's parent goes on after it.

    Example::

        WHILE(has_pages, [fetch_page, IF(is_last_page, [BREAK()])])
    """

    def _break(obj: Any, eng: GenericWorkflowEngine) -> None:
        eng.break_current_loop()

    return _break


@with_nice_docs
def STOP(*, comment: str | None = None) -> Task:
    """Build a task stopping the engine (:meth:`~workflow.engine.GenericWorkflowEngine.stop`).

    Example::

        [IF(is_sentinel, [STOP()]), process_record]
    """

    def _stop(obj: Any, eng: GenericWorkflowEngine) -> None:
        eng.stop()

    return _stop


@with_nice_docs
def HALT(*, comment: str | None = None) -> Task:
    """Build a task halting the engine (:meth:`~workflow.engine.GenericWorkflowEngine.halt`).

    The run can then be resumed with ``eng.restart(...)``. Example::

        [IF(needs_review, [HALT()]), publish]
    """

    def _halt(obj: Any, eng: GenericWorkflowEngine) -> None:
        eng.halt()

    return _halt


@with_nice_docs
def OBJ_NEXT(*, comment: str | None = None) -> Task:
    """Build a task leaving the current token; the next token starts at its first task.

    .. versionchanged:: 3.0
       Calls :meth:`~workflow.engine.GenericWorkflowEngine.continue_next_token`;
       2.x only left the innermost block, which was not the next token
       inside a nested block.

    Example::

        [IF(is_duplicate, [OBJ_NEXT()]), store]
    """

    def _obj_next(obj: Any, eng: GenericWorkflowEngine) -> None:
        eng.continue_next_token()

    return _obj_next


def _check_step(pattern: str, step: Any) -> None:
    if type(step) is not int:
        raise WorkflowDefinitionError(f"{pattern}: step must be an int; got {step!r}")


@with_nice_docs
def OBJ_JUMP_FWD(step: int = 1, *, comment: str | None = None) -> Task:
    """Build a task going on with the token ``step`` places forward.

    ``1`` is the next token; past the last token the run ends. It raises
    :class:`~workflow.errors.JumpTokenForward`, so a transition handler of
    that name sees it. Example::

        [IF(is_batch_header, [OBJ_JUMP_FWD(2)]), process]
    """
    _check_step("OBJ_JUMP_FWD", step)

    def _obj_jump_fwd(obj: Any, eng: GenericWorkflowEngine) -> None:
        raise JumpTokenForward(step)

    return _obj_jump_fwd


@with_nice_docs
def OBJ_JUMP_BWD(step: int = -1, *, comment: str | None = None) -> Task:
    """Build a task going on with the token ``abs(step)`` places back.

    ``-1`` is the previous token, ``0`` runs the current one again; the first
    token is as far back as it goes. It raises
    :class:`~workflow.errors.JumpTokenBack`. Example::

        [update, IF(needs_another_pass, [OBJ_JUMP_BWD(-1)])]
    """
    _check_step("OBJ_JUMP_BWD", step)

    def _obj_jump_bwd(obj: Any, eng: GenericWorkflowEngine) -> None:
        raise JumpTokenBack(step)

    return _obj_jump_bwd
