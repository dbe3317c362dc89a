"""The Invenio hook classes of the persistent engine: thin adapters to its typed methods.

The generic engine calls its processing factory and transition actions with
``eng`` typed as any engine. These classes cast it once to
:class:`~workflow.storage.PersistentWorkflowEngine` and call its documented
``on_*`` methods, which do the work; subclass them as you would Invenio's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from .._hooks import ExcInfo, announce_error
from ..engine import GenericWorkflowEngine, ProcessingFactory, TransitionActions
from ..errors import HaltProcessing, StorageError
from ..utils import classproperty

if TYPE_CHECKING:
    from .persistent import PersistentWorkflowEngine

__all__ = ["PersistentProcessingFactory", "PersistentTransitionActions"]


def _persistent(eng: GenericWorkflowEngine) -> PersistentWorkflowEngine:
    """Return ``eng`` as what it is: these hooks are only given persistent engines."""
    return cast("PersistentWorkflowEngine", eng)


class PersistentProcessingFactory(ProcessingFactory):
    """Takes the workflow's lock and stores the run as it goes."""

    @classproperty
    def transition_exception_mapper(cls) -> type[TransitionActions]:
        """:class:`PersistentTransitionActions`."""
        return PersistentTransitionActions

    @staticmethod
    def before_processing(eng: GenericWorkflowEngine, objects: Any) -> None:
        """Call :meth:`~workflow.storage.PersistentWorkflowEngine.on_pass_started`, then start."""
        _persistent(eng).on_pass_started(objects)
        ProcessingFactory.before_processing(eng, objects)

    @staticmethod
    def before_object(eng: GenericWorkflowEngine, objects: Any, obj: Any) -> None:
        """Call :meth:`~workflow.storage.PersistentWorkflowEngine.on_token_started`."""
        _persistent(eng).on_token_started(obj)

    @staticmethod
    def after_object(eng: GenericWorkflowEngine, objects: Any, obj: Any) -> None:
        """Call :meth:`~workflow.storage.PersistentWorkflowEngine.on_token_completed`."""
        _persistent(eng).on_token_completed(obj)

    @staticmethod
    def after_processing(eng: GenericWorkflowEngine, objects: Any) -> None:
        """Call :meth:`~workflow.storage.PersistentWorkflowEngine.on_pass_finished`, then end."""
        _persistent(eng).on_pass_finished(objects)
        ProcessingFactory.after_processing(eng, objects)


class PersistentTransitionActions(TransitionActions):
    """Store halts and errors before the engine's usual handling."""

    @staticmethod
    def StorageError(
        obj: Any, eng: GenericWorkflowEngine, callbacks: Any, exc_info: ExcInfo
    ) -> None:
        """Let a database failure through: it is not the task's failure.

        :meth:`~workflow.storage.PersistentWorkflowEngine.on_storage_failed`
        stores the run's failure first when a value could not be stored.
        """
        exc = cast(StorageError, exc_info[1])  # this handler is only given storage errors
        _persistent(eng).on_storage_failed(obj, exc)
        try:
            raise exc
        finally:
            del exc, exc_info

    @staticmethod
    def HaltProcessing(
        obj: Any, eng: GenericWorkflowEngine, callbacks: Any, exc_info: ExcInfo
    ) -> None:
        """Call :meth:`~workflow.storage.PersistentWorkflowEngine.on_token_halted`, then halt."""
        exc = cast(HaltProcessing, exc_info[1])  # this handler is only given halts
        _persistent(eng).on_token_halted(obj, exc)
        del exc
        try:
            TransitionActions.HaltProcessing(obj, eng, callbacks, exc_info)
        finally:
            del exc_info

    @staticmethod
    def Exception(obj: Any, eng: GenericWorkflowEngine, callbacks: Any, exc_info: ExcInfo) -> None:
        """Call :meth:`~workflow.storage.PersistentWorkflowEngine.on_token_failed`, then fail.

        The failure is announced (``workflow_error``) whether or not it could
        be stored; what is raised is the error the engine returns, or the
        :class:`~workflow.errors.StorageError` that kept it from being
        stored, raised while the task's exception is handled.
        """
        exc = exc_info[1]
        error: BaseException
        try:
            error = _persistent(eng).on_token_failed(obj, exc_info)
        except StorageError as failure:  # the failure could not be stored as it was
            error = failure
        announce_error(eng, exc)
        try:
            if error is exc or isinstance(error, StorageError):
                # A StorageError keeps its own cause; the task's exception is its context.
                raise error
            raise error from exc
        finally:
            del exc, error, exc_info
