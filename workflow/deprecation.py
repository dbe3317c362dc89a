"""The ``deprecated`` decorator, at its Invenio ``workflow`` 2.x import path."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["deprecated"]

P = ParamSpec("P")
R = TypeVar("R")


def deprecated(
    message: str, category: type[Warning] = DeprecationWarning
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Make a function warn with ``category`` and ``message`` each time it is called.

    The warning points at the caller of the decorated function.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            warnings.warn(message, category, stacklevel=2)
            return func(*args, **kwargs)

        return wrapper

    return decorate
