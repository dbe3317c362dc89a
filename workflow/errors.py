"""The exceptions of :mod:`workflow`.

Two families live here. *Transitions* are how a task steers the engine: the
engine's control-flow methods (:meth:`~workflow.engine.GenericWorkflowEngine.halt`,
:meth:`~workflow.engine.GenericWorkflowEngine.stop`, ...) raise them and the
engine catches them. *Errors* report something that went wrong; every one of
them derives from :class:`WorkflowBaseError`, so ``except WorkflowBaseError``
catches whatever the library raises for a problem, and nothing it uses to
steer a run::

    Exception
    ├── WorkflowTransition ............. base of every control-flow exception
    │   ├── StopProcessing ............. eng.stop(): leave this engine's token loop
    │   ├── HaltProcessing ............. eng.halt(): stop this and every parent engine
    │   ├── ContinueNextToken .......... eng.continue_next_token()
    │   ├── JumpToken .................. eng.jump_token(offset)
    │   ├── JumpTokenForward ........... eng.jumpTokenForward(offset) (deprecated)
    │   ├── JumpTokenBack .............. eng.jumpTokenBack(offset) (deprecated)
    │   ├── JumpCall ................... eng.jump_call(offset)
    │   ├── JumpCallForward ............ kept for imports; never raised
    │   ├── JumpCallBack ............... kept for imports; never raised
    │   ├── BreakFromThisLoop .......... eng.break_current_loop()
    │   ├── SkipToken .................. eng.skip_token()
    │   └── AbortProcessing ............ eng.abort()
    └── WorkflowBaseError .............. base of every error the library raises
        ├── WorkflowError .............. a task failed; honoured by process(stop_on_error=False)
        │   └── FlowRuntimeError ....... a flow step's reference or result is unusable
        ├── WorkflowDefinitionError .... a workflow definition is malformed or unknown
        │   └── FlowValidationError .... a declarative flow is invalid (lists every FlowError)
        ├── WorkflowObjectStatusError .. a token is in a status that forbids the operation
        ├── WorkflowAPIError ........... misuse of an API built on the engine
        ├── AnswerRefusedError ......... an answer to an ask was refused (who, and why)
        ├── WorkflowValueError ......... a bad argument value (a ValueError)
        │   └── FlowAnswerError ........ an answer for a halt step does not fit its schema
        ├── WorkflowTypeError .......... an argument of the wrong type (a TypeError)
        ├── WorkflowKeyError ........... nothing is registered under a key (a KeyError)
        ├── WorkflowIndexError ......... no token at a position (an IndexError)
        ├── WorkflowTimeoutError ....... waited too long (a TimeoutError)
        ├── WorkflowImportError ........ a missing extra or a broken entry point (an ImportError)
        └── StorageError ............... the database failed; raised by workflow.storage
            ├── DatabaseUnavailableError the database cannot be reached right now
            ├── WorkflowLockedError .... another process is running this workflow
            ├── WorkflowNotFoundError .. no stored workflow has that uuid (a LookupError)
            │   └── DefinitionNotFoundError  no stored definition has that name and version
            ├── DefinitionDisabledError  every version of a stored definition is disabled
            ├── DefinitionInUseError ... unfinished runs are pinned to a definition to delete
            ├── StoredRunError ......... a stored run cannot resume as it is (input, rows)
            ├── RunKeyConflictError .... an active run holds the key of a run to start
            └── TokenEncodingError ..... a token cannot be stored as JSON (a TypeError)

    KeyboardInterrupt
    └── WorkflowInterrupted ........ a stored run stopped on request (Ctrl-C, SIGTERM)

The names and base classes are those of Invenio ``workflow`` 2.x, so code that
catches them keeps working; :class:`WorkflowBaseError` was added above the
errors, which all still derive from :class:`Exception`. Errors that used to
be a builtin exception (``ValueError``, ``KeyError``, ...) still are one.
Every exception here has a working :func:`str`, keeps its message in
``args`` and survives a :mod:`pickle` round trip.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AbortProcessing",
    "AnswerRefusedError",
    "BreakFromThisLoop",
    "ContinueNextToken",
    "DatabaseUnavailableError",
    "DefinitionDisabledError",
    "DefinitionInUseError",
    "DefinitionNotFoundError",
    "FlowAnswerError",
    "FlowError",
    "FlowRuntimeError",
    "FlowValidationError",
    "HaltProcessing",
    "JumpCall",
    "JumpCallBack",
    "JumpCallForward",
    "JumpToken",
    "JumpTokenBack",
    "JumpTokenForward",
    "LeaseLostError",
    "RunKeyConflictError",
    "SkipToken",
    "StopProcessing",
    "StorageError",
    "StoredRunError",
    "TaskTimeLimitError",
    "TokenEncodingError",
    "WorkflowAPIError",
    "WorkflowBaseError",
    "WorkflowDefinitionError",
    "WorkflowError",
    "WorkflowImportError",
    "WorkflowIndexError",
    "WorkflowInterrupted",
    "WorkflowKeyError",
    "WorkflowLockedError",
    "WorkflowNotFoundError",
    "WorkflowObjectStatusError",
    "WorkflowTimeoutError",
    "WorkflowTransition",
    "WorkflowTypeError",
    "WorkflowValueError",
    "with_str",
]


def _describe(name: str, message: str, fields: dict[str, Any]) -> str:
    """Render ``Name('message', key=value, ...)`` leaving out unset fields."""
    parts = [repr(message)]
    parts += [f"{key}={value!r}" for key, value in fields.items() if value is not None]
    return f"{name}({', '.join(parts)})"


# A warning for task authors: the transitions below are ordinary exceptions,
# so a task's ``except Exception:`` around a call that halts (or stops, or
# jumps) swallows the halt and the run goes on as if nothing happened. Catch
# what you mean, or re-raise WorkflowTransition first:
#
#     try:
#         step(obj, eng)
#     except WorkflowTransition:
#         raise
#     except Exception:
#         ...


class WorkflowTransition(Exception):
    """Base of the control-flow exceptions; raised by tasks, caught by the engine.

    .. warning::
       A task's ``except Exception:`` catches these too: around a call that
       may halt, stop or jump, re-raise :class:`WorkflowTransition` first, or
       the halt is swallowed and the run goes on.
    """


class StopProcessing(WorkflowTransition):
    """Raised by ``eng.stop()``; the engine leaves its token loop and finishes."""


class HaltProcessing(WorkflowTransition):
    """Raised by ``eng.halt()``; halts this engine and every engine above it.

    The engine keeps its position, so the run can be resumed with
    :meth:`~workflow.engine.GenericWorkflowEngine.restart`. Catch it around
    :meth:`~workflow.engine.GenericWorkflowEngine.process`.

    :param message: why the run halted.
    :param action: name of an action a person or a program should take.
    :param payload: any data describing the halt.
    """

    # Slots: a halt is part of normal runs, and an exception without an
    # instance dict is raised in half the time. Other attributes still work.
    __slots__ = ("action", "message", "payload")

    def __init__(self, message: str = "", action: str | None = None, payload: Any = None):
        self.args = (message,)  # what Exception.__init__(message) would set
        self.message = message
        self.action = action
        self.payload = payload

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        fields = {"action": self.action, "payload": self.payload}
        return _describe(type(self).__name__, self.message, fields)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.action, self.payload))


class ContinueNextToken(WorkflowTransition):
    """Raised by ``eng.continue_next_token()``; the next token starts at its first task."""


class JumpToken(WorkflowTransition):
    """Raised by ``eng.jump_token(offset)``; ``args[0]`` is the offset."""


class JumpTokenForward(WorkflowTransition):
    """Raised by the deprecated ``eng.jumpTokenForward(offset)``."""


class JumpTokenBack(WorkflowTransition):
    """Raised by the deprecated ``eng.jumpTokenBack(offset)``."""


class JumpCall(WorkflowTransition):
    """Raised by ``eng.jump_call(offset)``; caught by the innermost running list."""


class JumpCallForward(WorkflowTransition):
    """Kept so that imports of Invenio 2.x keep working; nothing raises it."""


class JumpCallBack(WorkflowTransition):
    """Kept so that imports of Invenio 2.x keep working; nothing raises it."""


class BreakFromThisLoop(WorkflowTransition):
    """Raised by ``eng.break_current_loop()``; leaves the innermost running list."""


class SkipToken(WorkflowTransition):
    """Raised by ``eng.skip_token()``; the engine moves on to the next token."""


class AbortProcessing(WorkflowTransition):
    """Raised by ``eng.abort()``; the engine leaves its token loop."""


class WorkflowBaseError(Exception):
    """Base of every error the library raises; catch it to catch them all.

    The transitions (:class:`WorkflowTransition` and its subclasses) are not
    errors and do not derive from it.

    .. versionadded:: 3.0
    """


class WorkflowValueError(WorkflowBaseError, ValueError):
    """An argument has a bad value; raised where the argument is checked.

    .. versionadded:: 3.0
    """


class WorkflowTypeError(WorkflowBaseError, TypeError):
    """An argument has the wrong type; raised where the argument is checked.

    .. versionadded:: 3.0
    """


class WorkflowKeyError(WorkflowBaseError, KeyError):
    """Nothing is registered under a key; raised by the registries and ``Callbacks.get``.

    .. versionadded:: 3.0
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class WorkflowIndexError(WorkflowBaseError, IndexError):
    """No token at the position asked for; raised by the stored runs.

    .. versionadded:: 3.0
    """


class WorkflowImportError(WorkflowBaseError, ImportError):
    """Code the library needs cannot be imported: a missing extra, a broken entry point.

    The message says what to install or which entry point failed.

    .. versionadded:: 3.0
    """


class WorkflowTimeoutError(WorkflowBaseError, TimeoutError):
    """Waited longer than allowed; raised by the patterns that wait for threads.

    .. versionadded:: 3.0
    """


class TaskTimeLimitError(WorkflowTimeoutError):
    """A task ran past its time limit (see :func:`~workflow.runtime.time_limited`).

    :attr:`limit` is the limit in seconds; :attr:`task` names the task.

    .. versionadded:: 3.0
    """

    def __init__(
        self,
        message: str = "the task ran past its time limit",
        *,
        limit: float | None = None,
        task: str | None = None,
    ):
        super().__init__(message)
        self.limit = limit
        self.task = task

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), str(self), {"limit": self.limit, "task": self.task}))


class WorkflowError(WorkflowBaseError):
    """A task failed; raise it from a task, catch it around ``process()``.

    ``process(stop_on_error=False)`` moves on to the next token when a task
    raises it. The context fields are optional; those that are set are
    appended to the message.

    :param message: what went wrong.
    :param id_workflow: the workflow (its uuid or name) the error belongs to.
    :param id_object: the token (its id, or its index in the run).
    :param payload: any data describing the error.
    :param callback_pos: the position of the failing task (keyword only).
    :param task: the name of the failing task (keyword only).
    """

    def __init__(
        self,
        message: str,
        id_workflow: Any = None,
        id_object: Any = None,
        payload: Any = None,
        *,
        callback_pos: list[int] | None = None,
        task: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.id_workflow = id_workflow
        self.id_object = id_object
        self.payload = payload
        self.callback_pos = callback_pos
        self.task = task

    def _context(self) -> dict[str, Any]:
        return {
            "workflow": self.id_workflow,
            "token": self.id_object,
            "task": self.task,
            "position": self.callback_pos,
        }

    def __str__(self) -> str:
        context = ", ".join(f"{k} {v!r}" for k, v in self._context().items() if v is not None)
        return f"{self.message} ({context})" if context else self.message

    def __repr__(self) -> str:
        fields = {
            "id_workflow": self.id_workflow,
            "id_object": self.id_object,
            "payload": self.payload,
            "callback_pos": self.callback_pos,
            "task": self.task,
        }
        return _describe(type(self).__name__, self.message, fields)

    def __reduce__(self) -> tuple[Any, ...]:
        state = {"callback_pos": self.callback_pos, "task": self.task}
        args = (self.message, self.id_workflow, self.id_object, self.payload)
        return (type(self), args, state)

    @classmethod
    def from_task_failure(
        cls,
        exc: BaseException,
        *,
        workflow: Any,
        token: Any,
        callback_pos: list[int] | None,
        task: str | None,
        details: str,
    ) -> WorkflowError:
        """Return the error a stored run reports for a task that raised ``exc``.

        A task's own :class:`WorkflowError` is returned itself, with the
        context it left unset filled in; any other exception becomes a new
        :class:`WorkflowError` named ``"<type>: <message>"`` whose
        ``payload`` is ``details`` (the formatted traceback). Chain the new
        one to ``exc`` when raising it.

        .. versionadded:: 3.0
        """
        context = {
            "id_workflow": workflow,
            "id_object": token,
            "callback_pos": callback_pos,
            "task": task,
        }
        if isinstance(exc, WorkflowError):
            for key, value in context.items():
                if getattr(exc, key) is None:
                    setattr(exc, key, value)
            return exc
        return cls(f"{type(exc).__name__}: {exc}", payload=details, **context)


class WorkflowDefinitionError(WorkflowBaseError):
    """A workflow definition is malformed, or no definition has that name.

    Raised while a definition is registered or looked up, before any task runs.

    :param message: what is wrong.
    :param workflow_name: the definition concerned, when it has a name.
    :param payload: any data describing the problem.
    """

    def __init__(self, message: str, workflow_name: str | None = None, payload: Any = None):
        super().__init__(message)
        self.message = message
        self.workflow_name = workflow_name
        self.payload = payload

    def __str__(self) -> str:
        if self.workflow_name is None:
            return self.message
        return f"{self.message} (workflow {self.workflow_name!r})"

    def __repr__(self) -> str:
        fields = {"workflow_name": self.workflow_name, "payload": self.payload}
        return _describe(type(self).__name__, self.message, fields)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.workflow_name, self.payload))


class WorkflowObjectStatusError(WorkflowBaseError):
    """A token's status forbids the requested operation.

    :param message: what was refused.
    :param id_object: the token concerned.
    :param obj_status: the status that forbids it.
    """

    def __init__(self, message: str, id_object: Any = None, obj_status: Any = None):
        super().__init__(message)
        self.message = message
        self.id_object = id_object
        self.obj_status = obj_status

    def __str__(self) -> str:
        return f"{self.message} (token {self.id_object!r}, status {self.obj_status!r})"

    def __repr__(self) -> str:
        fields = {"id_object": self.id_object, "obj_status": self.obj_status}
        return _describe(type(self).__name__, self.message, fields)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.id_object, self.obj_status))


class WorkflowAPIError(WorkflowBaseError):
    """An API built on the engine was misused; raised by that API."""


class WorkflowInterrupted(KeyboardInterrupt):
    """A stored run stopped because it was asked to: Ctrl-C, SIGTERM, or ``request_stop()``.

    Raised by :class:`~workflow.storage.PersistentWorkflowEngine` once the run
    is stored and its lock released, so that it can be resumed at once: the
    run stays ``RUNNING``, with no lock. A stop asked for with
    :meth:`~workflow.storage.PersistentWorkflowEngine.request_stop` (the
    command's first Ctrl-C or SIGTERM) lets the current task finish and
    stores the token after it (``abandoned`` is false); a
    :exc:`KeyboardInterrupt` in the middle of a task abandons that task,
    which runs again when the run resumes (``abandoned`` is true).

    It derives from :exc:`KeyboardInterrupt`, not :exc:`Exception`: a task's
    ``except Exception:`` does not swallow it, and code that handles Ctrl-C
    handles it.

    :param message: what stopped and where.
    :param workflow: the uuid of the run.
    :param token: the index of the token that was running, if any.
    :param reason: what asked for the stop (``'SIGINT'``, ``'SIGTERM'``, ...).
    :param abandoned: whether the task that was running was abandoned.

    .. versionadded:: 3.0
    """

    def __init__(
        self,
        message: str,
        *,
        workflow: str | None = None,
        token: int | None = None,
        reason: str | None = None,
        abandoned: bool = False,
    ):
        super().__init__(message)
        self.message = message
        self.workflow = workflow
        self.token = token
        self.reason = reason
        self.abandoned = abandoned

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        fields = {"workflow": self.workflow, "token": self.token, "reason": self.reason}
        return _describe(type(self).__name__, self.message, fields)


class StorageError(WorkflowBaseError):
    """The database failed or refused; raised by :mod:`workflow.storage`.

    The original database exception is chained as ``__cause__``.

    :param message: what failed.
    :param workflow: the uuid of the workflow concerned, if any.
    :param token: the index of the token concerned, if any.
    :param operation: what the storage layer was doing (e.g. ``'checkpoint'``).
    """

    def __init__(
        self,
        message: str,
        *,
        workflow: str | None = None,
        token: int | None = None,
        operation: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.workflow = workflow
        self.token = token
        self.operation = operation

    def __str__(self) -> str:
        context = {"workflow": self.workflow, "token": self.token, "during": self.operation}
        shown = ", ".join(f"{k} {v!r}" for k, v in context.items() if v is not None)
        return f"{self.message} ({shown})" if shown else self.message

    def __repr__(self) -> str:
        fields = {"workflow": self.workflow, "token": self.token, "operation": self.operation}
        return _describe(type(self).__name__, self.message, fields)


class DatabaseUnavailableError(StorageError):
    """The database cannot be reached (server down, connection lost); retry later.

    What was committed before stays consistent: resume the run once the
    database is back.
    """


class WorkflowLockedError(StorageError):
    """Another process holds the lock of this workflow; raised when starting or resuming.

    :attr:`owner` names the holder and :attr:`expires` when its lock lapses
    (a holder that died stops renewing it).
    """

    owner: str | None = None
    expires: Any = None


class LeaseLostError(WorkflowLockedError):
    """A queue worker's lease on a token was taken over; its write was refused.

    A worker that stalls past its lease (a long pause, a lost connection)
    finds, at its next write, that another worker claimed the token with a
    higher fencing epoch: nothing the stalled worker did since its last
    write is stored, and the token is the other worker's.

    .. versionadded:: 3.0
    """


class WorkflowNotFoundError(StorageError, LookupError):
    """No stored workflow has the requested uuid."""


class _AboutADefinition(StorageError):
    """A storage error about one stored definition.

    :attr:`definition_name` and :attr:`definition_version` (``None`` for "the
    latest") name it.
    """

    def __init__(
        self,
        message: str,
        *,
        definition_name: str | None = None,
        definition_version: int | None = None,
        workflow: str | None = None,
        token: int | None = None,
        operation: str | None = None,
    ):
        super().__init__(message, workflow=workflow, token=token, operation=operation)
        self.definition_name = definition_name
        self.definition_version = definition_version


class DefinitionNotFoundError(_AboutADefinition, WorkflowNotFoundError):
    """No stored definition has that name and version; raised by ``Definitions``.

    Raised by the methods of :class:`~workflow.storage.Definitions`; deleted
    versions count as missing. A :class:`LookupError`, like its base.
    :attr:`definition_name` and :attr:`definition_version` (``None`` for
    "the latest") name what was looked up.

    .. versionadded:: 3.0
    """


class DefinitionDisabledError(_AboutADefinition):
    """A stored definition has versions, all disabled; raised by ``Definitions.get(name)``.

    A new run needs an enabled version: enable one, or put a new one.
    :attr:`definition_name` names the definition.

    .. versionadded:: 3.0
    """


class StoredRunError(StorageError):
    """A stored run cannot resume as it is; raised by ``resume()`` before any task runs.

    Its input was never stored whole (the process that started it stopped
    first), a token row is missing or unreadable, or a token's stored
    position leads outside the definition. The message names the workflow
    and the token; nothing ran and the run's lock is released.

    .. versionadded:: 3.0
    """


class TokenEncodingError(StorageError, TypeError):
    """A token's data cannot be stored as JSON; raised when the token is saved.

    The message names the token's index, the path inside its data and the
    offending type; register an encoder for that type on the store's codec.
    """


class FlowError:
    """One problem in a declarative flow: which flow, which step, where, and what.

    Immutable; two problems with the same fields are equal.

    :param flow: the flow's name.
    :param step: the step's name, or ``None`` for the flow itself.
    :param path: the JSON path of the offending value, such as
        ``$.steps[1].params.msg``.
    :param message: what is wrong there.

    .. versionadded:: 3.0
    """

    __slots__ = ("flow", "message", "path", "step")

    flow: str
    step: str | None
    path: str
    message: str

    def __init__(self, flow: str, step: str | None, path: str, message: str) -> None:
        object.__setattr__(self, "flow", flow)
        object.__setattr__(self, "step", step)
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "message", message)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"FlowError is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"FlowError is immutable; cannot delete {name!r}")

    def _fields(self) -> tuple[str, str | None, str, str]:
        return (self.flow, self.step, self.path, self.message)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, FlowError)
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self._fields())

    def __repr__(self) -> str:
        flow, step, path, message = self._fields()
        return f"FlowError(flow={flow!r}, step={step!r}, path={path!r}, message={message!r})"

    def __str__(self) -> str:
        where = f"flow {self.flow!r}"
        if self.step is not None:
            where += f", step {self.step!r}"
        return f"{where}, at {self.path}: {self.message}"


class FlowValidationError(WorkflowDefinitionError):
    """A declarative flow is invalid; raised before any of its steps runs.

    Raised by :func:`workflow.flows.load_flow`; catch it to show
    :attr:`errors` to whoever wrote the flow. The message lists every error,
    one per line.

    :param errors: every problem found, in document order.

    .. versionadded:: 3.0
    """

    def __init__(self, errors: list[FlowError]):
        self.errors = list(errors)
        name = self.errors[0].flow if self.errors else None
        count = len(self.errors)
        lines = [f"{count} error{'s' if count != 1 else ''} in flow {name!r}:"]
        lines.extend(f"  {error}" for error in self.errors)
        super().__init__("\n".join(lines), name, self.errors)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.errors,))


class FlowRuntimeError(WorkflowError):
    """A flow step cannot go on: a reference has no value, or a task returned a non-dict.

    Raised by the tasks a flow compiles to, while the run is processing;
    the persistent engine stores it as the token's error like any task error.

    .. versionadded:: 3.0
    """


def with_str(spec: tuple[str, tuple[str, ...]]) -> Any:
    """Give an exception class a ``__str__`` built from its attributes.

    Kept from Invenio ``workflow`` 2.x, where it was broken on Python 3.
    ``spec`` is ``(message_attribute, (keyword_attribute, ...))``; the result
    reads ``ClassName(<message>, key=value, ...)``.
    """
    message_attr, keyword_attrs = spec

    def decorate(cls: type[BaseException]) -> type[BaseException]:
        def __str__(self: BaseException) -> str:  # noqa: N807
            fields = {key: getattr(self, key, None) for key in keyword_attrs}
            return _describe(type(self).__name__, str(getattr(self, message_attr, "")), fields)

        cls.__str__ = __str__  # type: ignore[method-assign]
        return cls

    return decorate


class FlowAnswerError(WorkflowValueError):
    """An answer for a halt step was refused; raised by :func:`workflow.flows.apply_resume_data`.

    The halt step declares the ``schema`` of its answer and the answer does
    not match it, or no answer was given and the step has no ``default``.
    Nothing was recorded: catch it to ask again. :attr:`step` names the halt
    step, :attr:`path` the place in the answer (``$`` is the answer itself;
    ``None`` when the answer could not be checked at all).

    .. versionadded:: 3.0
    """

    def __init__(self, message: str, *, step: str | None = None, path: str | None = None):
        super().__init__(message)
        self.message = message
        self.step = step
        self.path = path

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, {"step": self.step, "path": self.path}))


class DefinitionInUseError(_AboutADefinition):
    """Unfinished runs are pinned to a stored definition; raised by ``Definitions.delete``.

    A run resumes with the version it started with, so a version cannot be
    deleted while runs that are neither completed nor cancelled use it:
    finish or cancel them first. :attr:`runs` counts them and :attr:`uuids`
    lists the first few.

    .. versionadded:: 3.0
    """

    runs: int = 0
    uuids: tuple[str, ...] = ()


class RunKeyConflictError(StorageError):
    """An active run holds the key of a run to start; raised when the run is stored.

    Raised by :meth:`Store.create_workflow() <workflow.storage.Store.create_workflow>`
    and by ``PersistentWorkflowEngine.with_name(..., key=...)`` with
    ``on_conflict="refuse"``; catch it to tell the caller that the work is
    under way already. :attr:`workflow` is the uuid of the run holding the
    key, :attr:`status` its status name (``"RUNNING"``, ``"HALTED"``, ...),
    :attr:`key` the key and :attr:`scope` the name it is held under.

    .. versionadded:: 3.0
    """

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        scope: str | None = None,
        status: str | None = None,
        workflow: str | None = None,
        token: int | None = None,
        operation: str | None = None,
    ):
        super().__init__(message, workflow=workflow, token=token, operation=operation)
        self.key = key
        self.scope = scope
        self.status = status


class AnswerRefusedError(WorkflowBaseError):
    """An answer to a waiting ``ask`` was refused; nothing was recorded.

    :attr:`reason` says why, as a word a program can test:

    - ``"not_found"``: no interaction has that id;
    - ``"not_an_approver"``: the step names its approvers and this is not one;
    - ``"already_answered"``: this person answered already (another key);
    - ``"key_in_use"``: the idempotency key was given with another person's answer;
    - ``"already_decided"``: the interaction was decided (:attr:`decision`, :attr:`by`);
    - ``"expired"``: its deadline passed (:attr:`decision` says what the timeout decided);
    - ``"cancelled"``: its run was cancelled;
    - ``"invalid"``: the answer does not match the step's schema, or is malformed.

    :attr:`interaction` is the interaction's id.

    .. versionadded:: 3.0
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        interaction: str | None = None,
        decision: str | None = None,
        by: tuple[str, ...] = (),
    ):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.interaction = interaction
        self.decision = decision
        self.by = tuple(by)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        fields = {
            "reason": self.reason,
            "interaction": self.interaction,
            "decision": self.decision,
            "by": self.by,
        }
        return (_rebuild, (type(self), self.message, fields))


def _rebuild(cls: type[Exception], message: str, fields: dict[str, Any]) -> Exception:
    """Rebuild an exception with keyword-only fields (for :mod:`pickle`)."""
    return cls(message, **fields)
