"""Sub-workflows: child engines, and :func:`RUN_WF`, which runs a definition in one.

:func:`RUN_WF` is offered by :mod:`workflow.patterns.utils`; the threads of
:mod:`workflow.patterns.controlflow` and :func:`PROFILE` build their child
engines here too.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any

from ..engine import GenericWorkflowEngine
from ..errors import WorkflowError
from ._nice_docs import Task, with_nice_docs


def _child_engine(eng: GenericWorkflowEngine, definition: Any) -> GenericWorkflowEngine:
    """Return a new engine running ``definition``, of ``eng``'s class when possible.

    A class whose constructor needs arguments (a database engine, say) cannot
    be copied blindly; the child is then a plain :class:`GenericWorkflowEngine`.
    """
    import inspect

    cls: type[GenericWorkflowEngine] = type(eng)
    try:
        inspect.signature(cls).bind()
    except (TypeError, ValueError):
        cls = GenericWorkflowEngine
    child = cls()
    child.callbacks.replace(definition)
    return child


def _missing_key(pattern: str, key: Any, where: str, keys: Iterable[Any]) -> WorkflowError:
    known = ", ".join(repr(known) for known in keys) or "none"
    return WorkflowError(f"{pattern}: no key {key!r} in {where} (its keys: {known})", task=pattern)


# -- sub-workflows ----------------------------------------------------------------


@with_nice_docs
def RUN_WF(
    workflow: Any,
    engine: Callable[[], GenericWorkflowEngine] | None = None,
    data_connector: Task | None = None,
    pass_eng: Iterable[str] = (),
    pass_always: bool | None = None,
    outkey: str | None = "RUN_WF",
    reinit: bool = False,
    *,
    comment: str | None = None,
) -> Task:
    """Build a task running the definition ``workflow`` in a child engine.

    :param workflow: the child's definition.
    :param engine: the child's class (default: the class of the calling
        engine when it needs no constructor argument, else
        :class:`~workflow.engine.GenericWorkflowEngine`).
    :param data_connector: ``data_connector(obj, eng)`` returns the child's
        token list; without it the token itself is that list.
    :param pass_eng: keys of ``eng.extra_data`` copied into the child's
        ``extra_data`` when the child is created.
    :param pass_always: copy the ``pass_eng`` keys before every run instead.
    :param outkey: any true value keeps the child and reuses it, run after
        run of the calling engine (falsy: a new child every time).
    :param reinit: create a new child every time.

    A halt in the child halts the calling engine at this task.

    .. versionchanged:: 3.0
       ``pass_eng`` is copied, never consumed, and a child is only reused by
       the ``RUN_WF`` task that created it, for the engine it ran for. The
       child is kept by the task, no longer in ``eng.extra_data[outkey]``:
       an engine is no data, and a stored run could not keep it.

    Example::

        [RUN_WF([split_authors, normalise_author], data_connector=get_authors), save]
    """
    keys = tuple(pass_eng)
    children: weakref.WeakKeyDictionary[GenericWorkflowEngine, GenericWorkflowEngine] = (
        weakref.WeakKeyDictionary()
    )

    def _run_wf(obj: Any, eng: GenericWorkflowEngine) -> None:
        kept = children.get(eng) if outkey else None
        if reinit or kept is None:
            fresh = True
            if engine is None:
                child = _child_engine(eng, workflow)
            else:
                child = engine()
                child.callbacks.replace(workflow)
            if outkey:
                children[eng] = child
        else:
            fresh, child = False, kept
        if fresh or pass_always:
            for key in keys:
                if key not in eng.extra_data:
                    raise _missing_key("RUN_WF", key, "the engine's extra_data", eng.extra_data)
                child.extra_data[key] = eng.extra_data[key]
        objects = obj if data_connector is None else data_connector(obj, eng)
        child.process(objects)

    return _run_wf
