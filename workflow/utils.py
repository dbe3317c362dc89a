"""Descriptors kept at the import path of Invenio ``workflow`` 2.x.

The engine's hooks (``processing_factory``, ``action_mapper``, ...) are
read-only class-level properties; user code overrides them with these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["classproperty", "staticproperty"]

T = TypeVar("T")


class classproperty(Generic[T]):  # noqa: N801 - the Invenio name
    """A read-only property computed from the class: ``fget(cls)``.

    Works on the class and on its instances alike.
    """

    def __init__(self, fget: Callable[[Any], T]) -> None:
        self.fget = fget
        self.__doc__ = fget.__doc__

    def __get__(self, instance: object, owner: type | None = None) -> T:
        if owner is None:
            owner = type(instance)
        return self.fget(owner)


class staticproperty(Generic[T]):  # noqa: N801 - the Invenio name
    """A read-only property computed without arguments: ``fget()``.

    Works on the class and on its instances alike.
    """

    def __init__(self, fget: Callable[[], T]) -> None:
        self.fget = fget
        self.__doc__ = fget.__doc__

    def __get__(self, instance: object, owner: type | None = None) -> T:
        return self.fget()
