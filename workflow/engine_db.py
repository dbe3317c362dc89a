"""An engine that records its progress in a database model the user supplies.

:class:`DbWorkflowEngine` is a :class:`~workflow.engine.GenericWorkflowEngine`
whose hooks (:class:`DbProcessingFactory`, :class:`DbTransitionAction`) save
the status of the run and of each token as it goes. This module imports no
database library: the storage is the user's model, which only has to keep the
promises below.

The workflow model, passed as ``db_obj``:

* ``name``, ``uuid``, ``status`` and ``objects`` (the tokens stored for
  this workflow) attributes;
* ``save(status)``: store the workflow, with ``status`` (a
  :class:`WorkflowStatus`) when it is not ``None``.

Each token:

* ``known_statuses``: its status enumeration, usually :class:`ObjectStatus`;
* ``status``: the member of ``known_statuses``, or that member's value;
* ``save(status=..., id_workflow=..., callback_pos=...)``: store the token,
  with any argument given (``callback_pos`` is the position of its task as a
  new ``list[int]``);
* ``set_error_message(text)``: keep the traceback of a task that failed.

Statuses saved during a run:

================================  =====================  =====================
event                             workflow               token
================================  =====================  =====================
a pass starts                     ``RUNNING``
a token starts                                           ``RUNNING``
a token's tasks all succeed                              ``COMPLETED``
a task halts                      ``HALTED``             ``HALTED`` + position
a task fails                      ``ERROR``              ``ERROR`` + position
a pass ends (last token done)     ``COMPLETED``
a pass ends early (``stop()``)    ``HALTED``
================================  =====================  =====================

Differences from Invenio ``workflow`` 2.1.6, all deliberate:

* A run that finishes is saved ``COMPLETED`` and sends ``workflow_finished``
  (2.1.6 saved it ``HALTED`` and sent nothing). A run over no tokens is
  saved ``COMPLETED`` too.
* A failing task surfaces as a :class:`~workflow.errors.WorkflowError` that
  names the workflow, the token, the task and its position, chained to the
  task's exception (2.1.6 raised ``TypeError: 'WorkflowError' object is not
  callable``). A task's own ``WorkflowError`` is re-raised as it is. Either
  way ``process(stop_on_error=False)`` saves the failed token and goes on
  with the next one. The ``workflow_error`` signal is sent once (2.1.6 sent
  ``workflow_halted``).
* A halted token's position is saved as ``callback_pos=``, like a failed
  token's (2.1.6 used ``task_counter=`` for halts only).
* Tokens need no ``log`` attribute, and a token that is false in a boolean
  context (a model with ``__len__``, say) is saved like any other.
* The object filters (:attr:`DbWorkflowEngine.final_objects`, ...) accept a
  status stored as the enumeration member or as its value.
"""

from __future__ import annotations

import traceback
from enum import Enum
from typing import Any, cast

from ._hooks import ExcInfo, announce_error
from .engine import GenericWorkflowEngine, ProcessingFactory, TransitionActions
from .errors import WorkflowBaseError, WorkflowError
from .utils import classproperty

__all__ = [
    "DbProcessingFactory",
    "DbTransitionAction",
    "DbWorkflowEngine",
    "EnumLabel",
    "ObjectStatus",
    "WorkflowStatus",
]


class _NoLabelsError(WorkflowBaseError, NotImplementedError):
    """An :class:`EnumLabel` subclass gives no labels."""


class EnumLabel(Enum):
    """An enumeration whose members carry a human-readable ``label``.

    A subclass defines its members and a ``labels`` class property mapping
    each member's value to its label.
    """

    label: str

    def __init__(self, value: Any) -> None:
        self.label = type(self).labels[value]

    @classproperty
    def labels(cls) -> dict[Any, str]:
        """Map each member's value to its label."""
        raise _NoLabelsError("an EnumLabel subclass must define a 'labels' class property")


class WorkflowStatus(EnumLabel):
    """The status of a workflow run, as :class:`DbWorkflowEngine` saves it."""

    NEW = 0
    RUNNING = 1
    HALTED = 2
    ERROR = 3
    COMPLETED = 4
    #: A token of the run waits for a person (added in 3.0).
    WAITING = 5
    #: A person stopped the run for good: it is never resumed (added in 3.0).
    CANCELLED = 6

    @classproperty
    def labels(cls) -> dict[Any, str]:
        """Map each value to its label."""
        return {
            0: "New",
            1: "Running",
            2: "Halted",
            3: "Error",
            4: "Completed",
            5: "Waiting",
            6: "Cancelled",
        }


class ObjectStatus(EnumLabel):
    """The status of one token, as :class:`DbWorkflowEngine` saves it."""

    INITIAL = 0
    COMPLETED = 1
    HALTED = 2
    RUNNING = 3
    ERROR = 4
    #: The token waits for a person's answer (added in 3.0).
    WAITING = 5

    @classproperty
    def labels(cls) -> dict[Any, str]:
        """Map each value to its label."""
        return {
            0: "New",
            1: "Done",
            2: "Need action",
            3: "In process",
            4: "Error",
            5: "Waiting",
        }


def _has_status(obj: Any, name: str) -> bool:
    """Tell whether ``obj.status`` is its ``known_statuses`` member ``name`` (or its value)."""
    wanted = getattr(obj.known_statuses, name)
    status = obj.status
    return bool(status == wanted or status == wanted.value)


class DbWorkflowEngine(GenericWorkflowEngine):
    """An engine that saves the status of its run and of its tokens in ``db_obj``.

    :param db_obj: the workflow's database model (see :mod:`workflow.engine_db`
        for what it must offer).
    :param kwargs: accepted for compatibility with Invenio ``workflow`` 2.x
        and ignored.
    """

    def __init__(self, db_obj: Any, **kwargs: Any) -> None:
        #: The workflow's database model.
        self.db_obj = db_obj
        super().__init__()

    @classproperty
    def processing_factory(cls) -> type[ProcessingFactory]:
        """The hooks that save the run: :class:`DbProcessingFactory`."""
        return DbProcessingFactory

    @classproperty
    def known_statuses(cls) -> type[WorkflowStatus]:
        """The statuses this engine saves: :class:`WorkflowStatus`."""
        return WorkflowStatus

    @property
    def name(self) -> Any:
        """The workflow's name, from ``db_obj``."""
        return self.db_obj.name

    @property
    def status(self) -> Any:
        """The workflow's status, from ``db_obj``."""
        return self.db_obj.status

    @property
    def uuid(self) -> Any:
        """The workflow's identifier, from ``db_obj``."""
        return self.db_obj.uuid

    @property
    def database_objects(self) -> Any:
        """The tokens stored for this workflow (``db_obj.objects``)."""
        return self.db_obj.objects

    @property
    def final_objects(self) -> list[Any]:
        """The stored tokens whose status is ``COMPLETED``."""
        return [obj for obj in self.database_objects if _has_status(obj, "COMPLETED")]

    @property
    def halted_objects(self) -> list[Any]:
        """The stored tokens whose status is ``HALTED``."""
        return [obj for obj in self.database_objects if _has_status(obj, "HALTED")]

    @property
    def running_objects(self) -> list[Any]:
        """The stored tokens whose status is ``RUNNING``."""
        return [obj for obj in self.database_objects if _has_status(obj, "RUNNING")]

    def save(self, status: WorkflowStatus | None = None) -> None:
        """Store the workflow through ``db_obj.save(status)``.

        :param status: the status to record; ``None`` keeps the stored one.
        """
        self.db_obj.save(status)

    def __repr__(self) -> str:
        return f"<DbWorkflow_engine({getattr(self.db_obj, 'name', None)})>"

    def __str__(self) -> str:
        state = self.state
        return "\n".join(
            [
                f"{type(self).__name__} {getattr(self.db_obj, 'name', None)!r}",
                f"  uuid:         {getattr(self.db_obj, 'uuid', None)}",
                f"  status:       {getattr(self.db_obj, 'status', None)}",
                f"  tokens:       {len(self.objects)}",
                f"  token_pos:    {state.token_pos}",
                f"  callback_pos: {state.callback_pos}",
                f"  model:        {self.db_obj}",
            ]
        )


def _db(eng: GenericWorkflowEngine) -> DbWorkflowEngine:
    """Return ``eng`` typed as the database engine the hooks below are meant for."""
    return cast(DbWorkflowEngine, eng)


class DbTransitionAction(TransitionActions):
    """Save the token and the workflow when a task halts or fails."""

    @staticmethod
    def HaltProcessing(
        obj: Any, eng: GenericWorkflowEngine, callbacks: Any, exc_info: ExcInfo
    ) -> None:
        """Save the token ``HALTED`` at its position and the workflow ``HALTED``, then re-raise."""
        db_eng = _db(eng)
        obj.save(
            status=obj.known_statuses.HALTED,
            callback_pos=list(eng.state.callback_pos),
            id_workflow=db_eng.uuid,
        )
        exc = exc_info[1]
        if eng.ends_pass(exc):
            db_eng.save(db_eng.known_statuses.HALTED)
        eng.log.warning(
            "Workflow '%s' halted at task %s with message: %s",
            db_eng.name,
            eng.current_taskname or "Unknown",
            getattr(exc, "message", exc),
        )
        TransitionActions.HaltProcessing(obj, eng, callbacks, exc_info)

    @staticmethod
    def Exception(obj: Any, eng: GenericWorkflowEngine, callbacks: Any, exc_info: ExcInfo) -> None:
        """Save the token ``ERROR`` with its traceback and the workflow ``ERROR``, then raise.

        Sends ``workflow_error`` and raises a
        :class:`~workflow.errors.WorkflowError` naming the workflow, the token
        index, the task and its position, chained to the task's exception. A
        task's own ``WorkflowError`` is raised again as it is, with the
        context fields it left unset filled in.
        """
        db_eng = _db(eng)
        exc = exc_info[1]
        position = list(eng.state.callback_pos)
        task = eng.current_taskname
        details = "".join(traceback.format_exception(*exc_info))
        eng.log.error(
            "Workflow '%s' failed at task %s (token %d, position %s):\n%s",
            db_eng.name,
            task,
            eng.state.token_pos,
            position,
            details,
        )
        obj.set_error_message(details)
        obj.save(status=obj.known_statuses.ERROR, callback_pos=position, id_workflow=db_eng.uuid)
        error = WorkflowError.from_task_failure(
            exc,
            workflow=db_eng.uuid,
            token=eng.state.token_pos,
            callback_pos=position,
            task=task,
            details=details,
        )
        if eng.ends_pass(error):
            db_eng.save(db_eng.known_statuses.ERROR)
        announce_error(eng, exc)
        try:
            if error is exc:
                raise exc
            raise error from exc
        finally:
            # Free the exception by reference counting: its traceback holds this frame.
            del exc, error, exc_info


class DbProcessingFactory(ProcessingFactory):
    """Save the workflow's status around a pass and each token's around its tasks."""

    @classproperty
    def transition_exception_mapper(cls) -> type[TransitionActions]:
        """The handlers that save halts and errors: :class:`DbTransitionAction`."""
        return DbTransitionAction

    @staticmethod
    def before_processing(eng: GenericWorkflowEngine, objects: Any) -> None:
        """Save the workflow ``RUNNING``, then start the pass."""
        db_eng = _db(eng)
        db_eng.save(db_eng.known_statuses.RUNNING)
        ProcessingFactory.before_processing(eng, objects)

    @staticmethod
    def after_processing(eng: GenericWorkflowEngine, objects: Any) -> None:
        """Save the workflow ``COMPLETED`` (``HALTED`` if the pass ended early), then finish.

        The workflow is saved before ``workflow_finished`` is sent, so its
        receivers find the final status stored.
        """
        db_eng = _db(eng)
        eng.state.current_object_processed = True
        done = db_eng.has_completed or len(objects) == 0
        db_eng.save(db_eng.known_statuses.COMPLETED if done else db_eng.known_statuses.HALTED)
        ProcessingFactory.after_processing(eng, objects)

    @staticmethod
    def before_object(eng: GenericWorkflowEngine, objects: Any, obj: Any) -> None:
        """Save the token ``RUNNING`` in this workflow."""
        obj.save(status=obj.known_statuses.RUNNING, id_workflow=_db(eng).uuid)

    @staticmethod
    def after_object(eng: GenericWorkflowEngine, objects: Any, obj: Any) -> None:
        """Save the token ``COMPLETED`` in this workflow."""
        obj.save(status=obj.known_statuses.COMPLETED, id_workflow=_db(eng).uuid)
