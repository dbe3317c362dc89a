"""The ``Task`` type and :func:`with_nice_docs`, which every pattern factory is built with.

Both are offered by :mod:`workflow.patterns.utils`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

#: A task: any callable ``task(obj, eng)``.
Task = Callable[[Any, Any], Any]

# The logger of workflow.patterns.utils, where this code was written first.
log = logging.getLogger("workflow.patterns.utils")


def with_nice_docs(func: Callable[P, R]) -> Callable[P, R]:
    """Give a pattern factory a ``comment=`` keyword and document what it builds.

    The decorated factory takes an optional ``comment`` keyword argument. The
    task it returns (or, when it returns a list, the list's first item) gets
    that comment as its ``__doc__``; without a comment it gets a summary of the
    call, e.g. ``IF: args(<function is_big at 0x...>, [...]); kwargs().``
    (lists and tuples among the arguments show as ``[...]`` and ``(...)``).
    invenio-workflows shows this text in a token's task history.

    Every factory of :mod:`workflow.patterns` except :func:`EMPTY_CALL` is
    decorated with it. For the type checker, declare ``comment`` as a
    keyword-only parameter of the factory; the decorator consumes it, so the
    factory itself never receives it::

        @with_nice_docs
        def ADD(number, *, comment=None):
            def _add(obj, eng):
                obj.data += number

            return _add

        ADD(2, comment="Add two to the token").__doc__  # 'Add two to the token'
    """

    @functools.wraps(func)
    def factory(*args: P.args, **kwargs: P.kwargs) -> R:
        comment = kwargs.pop("comment", None)
        built = func(*args, **kwargs)
        _set_doc(built, str(comment) if comment else _summary(func, args, kwargs))
        return built

    return factory


def _summary(func: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    shown_args = ", ".join(_show(arg) for arg in args)
    shown_kwargs = ", ".join(f"{key}={_show(value)}" for key, value in kwargs.items())
    name = getattr(func, "__name__", repr(func))
    return f"{name}: args({shown_args}); kwargs({shown_kwargs})."


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[...]" if value else "[]"
    if isinstance(value, tuple):
        return "(...)" if value else "()"
    return repr(value)


def _set_doc(built: object, doc: str) -> None:
    target = built
    if isinstance(built, Sequence) and not isinstance(built, str):
        if not built:
            return
        target = built[0]
    try:
        target.__doc__ = doc
    except (AttributeError, TypeError):
        log.debug("cannot set the docstring of %r", target)
