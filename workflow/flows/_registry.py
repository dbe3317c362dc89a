"""The task registry: the only Python a flow definition can name."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal, TypeVar, overload

from ..errors import WorkflowImportError, WorkflowKeyError, WorkflowTypeError, WorkflowValueError

__all__ = ["ENTRY_POINT_GROUP", "RegisteredTask", "TaskRegistry", "default_registry", "task"]

#: The entry point group installed packages use to contribute tasks.
ENTRY_POINT_GROUP = "workflow.tasks"

#: How a registered function is called: ``fn(context, params)`` or ``fn(obj, eng, **params)``.
TaskStyle = Literal["context", "engine"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RegisteredTask:
    """A function registered under a task name.

    :param name: the name flows use in their ``task`` field.
    :param function: the function itself.
    :param style: ``"context"`` for ``function(context, params) -> dict``,
        ``"engine"`` for ``function(obj, eng, **params)``.

    .. versionadded:: 3.0
    """

    name: str
    function: Callable[..., Any]
    style: TaskStyle = "context"

    def __repr__(self) -> str:
        qualname = getattr(self.function, "__qualname__", repr(self.function))
        module = getattr(self.function, "__module__", "?")
        return f"<RegisteredTask {self.name!r} -> {module}.{qualname} ({self.style})>"


class TaskRegistry:
    """Named tasks that declarative flows may call.

    A flow's ``task`` field is looked up here and nowhere else: a definition
    never makes the engine import a module. Functions get in through
    :meth:`register` (or the :func:`task` decorator), and through the
    ``workflow.tasks`` entry point group of installed packages, whose entry
    point names are task names::

        [project.entry-points."workflow.tasks"]
        "images.resize" = "my_package.images:resize"

    Entry points are read lazily, the first time a name is not found.

    :param entry_point_group: the group to read, or ``None`` to read none.

    .. versionadded:: 3.0
    """

    def __init__(self, *, entry_point_group: str | None = ENTRY_POINT_GROUP) -> None:
        self.entry_point_group = entry_point_group
        self._tasks: dict[str, RegisteredTask] = {}
        self._entry_points: dict[str, EntryPoint] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<TaskRegistry {len(self._tasks)} tasks>"

    def register(
        self, name: str, function: Callable[..., Any], *, style: TaskStyle = "context"
    ) -> RegisteredTask:
        """Register ``function`` under ``name`` and return its entry.

        Registering the same function again under the same name is allowed
        (modules get reloaded); another function under a taken name is not.

        :raises ValueError: on an empty or taken name, or an unknown style.
        :raises TypeError: when ``function`` is not callable.
        """
        if not isinstance(name, str) or not name.strip():
            raise WorkflowValueError(f"a task name must be a non-empty string, got {name!r}")
        if style not in ("context", "engine"):
            raise WorkflowValueError(
                f"task {name!r}: style must be 'context' or 'engine', got {style!r}"
            )
        if not callable(function):
            raise WorkflowTypeError(f"task {name!r}: {function!r} is not callable")
        entry = RegisteredTask(name, function, style)
        with self._lock:
            known = self._tasks.get(name)
            if known is not None and known.function is not function:
                raise WorkflowValueError(
                    f"task name {name!r} is already registered to {known.function!r}"
                )
            self._tasks[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Forget the task ``name``.

        :raises KeyError: when no task has that name.
        """
        with self._lock:
            try:
                del self._tasks[name]
            except KeyError:
                raise WorkflowKeyError(f"no task is registered as {name!r}") from None

    def get(self, name: str) -> RegisteredTask:
        """Return the task registered as ``name``, reading entry points if needed.

        :raises KeyError: when neither a registration nor an entry point has
            that name.
        """
        entry = self._tasks.get(name)
        if entry is not None:
            return entry
        point = self._entry_point_map().get(name)
        if point is None:
            raise WorkflowKeyError(f"no task is registered as {name!r}")
        return self._register_entry_point(point)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name in self._tasks or name in self._entry_point_map()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def names(self) -> list[str]:
        """Return every known task name, registered or offered by an entry point, sorted."""
        return sorted(set(self._tasks) | set(self._entry_point_map()))

    def load_entry_points(self) -> list[RegisteredTask]:
        """Import every task of the entry point group now, rather than on first use.

        :raises ImportError: from a broken entry point, naming it.
        """
        return [self._register_entry_point(point) for point in self._entry_point_map().values()]

    def _entry_point_map(self) -> dict[str, EntryPoint]:
        if self._entry_points is None:
            found: dict[str, EntryPoint] = {}
            if self.entry_point_group is not None:
                for point in entry_points(group=self.entry_point_group):
                    found.setdefault(point.name, point)
            self._entry_points = found
        return self._entry_points

    def _register_entry_point(self, point: EntryPoint) -> RegisteredTask:
        known = self._tasks.get(point.name)
        if known is not None:
            return known
        try:
            function = point.load()
        except Exception as exc:
            raise WorkflowImportError(
                f"task {point.name!r}: entry point {point.value!r} of group "
                f"{point.group!r} cannot be loaded: {exc}"
            ) from exc
        declared = getattr(function, "workflow_task", None)
        style: TaskStyle = declared.style if isinstance(declared, RegisteredTask) else "context"
        return self.register(point.name, function, style=style)

    def refresh(self) -> None:
        """Read the entry point group again (after installing a package at run time)."""
        self._entry_points = None


#: The registry :func:`task` and :func:`~workflow.flows.load_flow` use by default.
default_registry = TaskRegistry()


@overload
def task(name: F, /) -> F: ...


@overload
def task(
    name: str | None = None,
    /,
    *,
    style: TaskStyle = "context",
    registry: TaskRegistry | None = None,
) -> Callable[[F], F]: ...


def task(
    name: str | Callable[..., Any] | None = None,
    /,
    *,
    style: TaskStyle = "context",
    registry: TaskRegistry | None = None,
) -> Any:
    """Register the decorated function as a flow task.

    Used bare (``@task``), the name is the function's ``module.qualname``;
    ``@task("orders.validate")`` names it. The function is returned
    unchanged, with the entry in its ``workflow_task`` attribute.

    :param name: the task's name in flow definitions.
    :param style: ``"context"`` (the default) for
        ``function(context, params) -> dict | None``, whose result becomes the
        step's result; ``"engine"`` for ``function(obj, eng, **params)``, an
        engine task that gets the step's parameters as keyword arguments.
    :param registry: where to register; :data:`default_registry` by default.

    .. versionadded:: 3.0
    """
    target = default_registry if registry is None else registry

    def decorate(function: F) -> F:
        task_name = name if isinstance(name, str) else _default_name(function)
        entry = target.register(task_name, function, style=style)
        with contextlib.suppress(AttributeError):  # a bound method takes no attributes
            function.workflow_task = entry  # type: ignore[attr-defined]
        return function

    if callable(name):
        return decorate(name)
    return decorate


def _default_name(function: Callable[..., Any]) -> str:
    module = str(getattr(function, "__module__", None) or "")
    qualname = str(getattr(function, "__qualname__", None) or getattr(function, "__name__", ""))
    return f"{module}.{qualname}" if module else qualname
