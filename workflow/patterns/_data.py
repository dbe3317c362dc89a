"""Engine and token data: tasks reading and writing ``eng.extra_data`` and the token.

:func:`EMPTY_CALL`, :func:`ENG_GET`, :func:`ENG_SET`, :func:`OBJ_GET` and
:func:`OBJ_SET` are offered by :mod:`workflow.patterns.utils`.
"""

from __future__ import annotations

from typing import Any

from ..engine import GenericWorkflowEngine
from ..errors import WorkflowDefinitionError
from ._nice_docs import Task, with_nice_docs


def EMPTY_CALL(obj: Any, eng: Any) -> None:
    """Do nothing; a task to fill a place in a definition.

    Use it as it is (it is a task, not a factory)::

        IF_ELSE(is_ready, [publish], [EMPTY_CALL])
    """


@with_nice_docs
def ENG_GET(something: str, *, comment: str | None = None) -> Task:
    """Build a task returning ``eng.extra_data[something]``, or ``None`` when missing.

    The result is useful where a value is expected, e.g. in :func:`CMP`::

        IF(CMP(ENG_GET("retries"), 3, "<"), [try_again])
    """

    def _eng_get(obj: Any, eng: GenericWorkflowEngine) -> Any:
        return eng.extra_data.get(something)

    return _eng_get


@with_nice_docs
def ENG_SET(key: str, value: Any, *, comment: str | None = None) -> Task:
    """Build a task setting ``eng.extra_data[key] = value``.

    Example::

        [ENG_SET("mode", "strict"), validate]
    """

    def _eng_set(obj: Any, eng: GenericWorkflowEngine) -> None:
        eng.extra_data[key] = value

    return _eng_set


_OBJ_GET_CONDITIONS = ("all", "any", "many")


@with_nice_docs
def OBJ_GET(something: Any, cond: str = "all", *, comment: str | None = None) -> Task:
    """Build a task reading one or several keys of the token, a dict-like object.

    :param something: one key, or a list or tuple of keys.
    :param cond: with several keys, what the task returns: ``'all'`` a dict
        of them when every one has a true value, else ``False``; ``'any'``
        the first true value, else ``False``; ``'many'`` a dict of the keys
        that have a true value (maybe empty).

    With one key the task returns ``obj[something]``, or ``False`` when the
    token has no such key. Example::

        IF(OBJ_GET(["title", "author"]), [index_record])
    """
    if cond not in _OBJ_GET_CONDITIONS:
        raise WorkflowDefinitionError(
            f"OBJ_GET: cond must be one of {', '.join(_OBJ_GET_CONDITIONS)}; got {cond!r}"
        )
    several = isinstance(something, (list, tuple))

    def _obj_get(obj: Any, eng: GenericWorkflowEngine) -> Any:
        if not several:
            return _item(obj, something)
        values = {key: _item(obj, key) for key in something}
        if cond == "any":
            return next((value for value in values.values() if value), False)
        if cond == "many":
            return {key: value for key, value in values.items() if value}
        return values if all(values.values()) else False

    return _obj_get


def _item(obj: Any, key: Any) -> Any:
    try:
        return obj[key]
    except (KeyError, IndexError):
        return False


@with_nice_docs
def OBJ_SET(key: Any, value: Any, *, comment: str | None = None) -> Task:
    """Build a task setting ``obj[key] = value`` on the token.

    Example::

        [OBJ_SET("status", "checked"), save]
    """

    def _obj_set(obj: Any, eng: GenericWorkflowEngine) -> None:
        obj[key] = value

    return _obj_set
