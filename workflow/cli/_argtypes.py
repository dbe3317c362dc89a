"""The types of the command's numeric options: finite, and never negative.

argparse turns the :class:`argparse.ArgumentTypeError` they raise into a
usage error (exit 2) naming the option.
"""

from __future__ import annotations

import argparse
import math

__all__ = ["count", "lease", "positive", "seconds"]


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else f"{text[:37]}...")


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a whole number") from None


def count(text: str) -> int:
    """Return ``text`` as a whole number of 0 or more."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def positive(text: str) -> int:
    """Return ``text`` as a whole number of 1 or more."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def seconds(text: str) -> float:
    """Return ``text`` as a finite number of seconds, 0 or more (``nan``, ``inf`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number 0 or more, not {_shown(text)}")
    return value


#: The shortest lock lease the command accepts, in seconds: the run renews its
#: lock every third of it, and a database round trip must fit in between.
MIN_LEASE = 1.0


def lease(text: str) -> float:
    """Return ``text`` as the seconds of a lock's lease: finite and at least :data:`MIN_LEASE`."""
    value = seconds(text)
    if value < MIN_LEASE:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_LEASE:g} second, not {text!r}")
    return value
