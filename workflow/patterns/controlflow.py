"""Control-flow patterns: factories of tasks and blocks for workflow definitions.

A pattern is an ordinary factory: it returns a task (a callable
``task(obj, eng)``) or a block (a list to put in a definition) built only on
the engine's public API, so you can write your own the same way. Blocks are
laid out as in Invenio ``workflow`` 2.x, so halted runs keep their
``callback_pos``; the jumps inside a block are counted after tuples have been
flattened into it, and made with :class:`~workflow.engine.JumpTask` items,
which the engine runs without a call of their own.

Patterns that run branches in threads (:func:`PARALLEL_SPLIT`,
:func:`SYNCHRONIZE`) wait for all of them and re-raise the first failure of
a branch (in branch order) in the calling task; the failures of the other
branches are attached to it as notes (:meth:`BaseException.add_note`; on
Python 3.10 the ``__notes__`` attribute, which tracebacks do not show there).
"""

from __future__ import annotations

from ._blocks import CHOICE, CMP, FOR, IF, IF_ELSE, IF_NOT, SIMPLE_MERGE, WHILE
from ._jumps import (
    BREAK,
    HALT,
    OBJ_JUMP_BWD,
    OBJ_JUMP_FWD,
    OBJ_NEXT,
    STOP,
    TASK_JUMP_BWD,
    TASK_JUMP_FWD,
    TASK_JUMP_IF,
)
from ._nice_docs import Task as Task  # importable from here before the split too
from ._nice_docs import with_nice_docs as with_nice_docs
from ._threads import MAX_TIMEOUT as _MAX_TIMEOUT
from ._threads import PARALLEL_SPLIT, SYNCHRONIZE, MySpecialThread, MyTimeoutQueue

__all__ = [
    "BREAK",
    "CHOICE",
    "CMP",
    "FOR",
    "HALT",
    "IF",
    "IF_ELSE",
    "IF_NOT",
    "MAX_TIMEOUT",
    "OBJ_JUMP_BWD",
    "OBJ_JUMP_FWD",
    "OBJ_NEXT",
    "PARALLEL_SPLIT",
    "SIMPLE_MERGE",
    "STOP",
    "SYNCHRONIZE",
    "TASK_JUMP_BWD",
    "TASK_JUMP_FWD",
    "TASK_JUMP_IF",
    "WHILE",
    "MySpecialThread",
    "MyTimeoutQueue",
]

#: Default ``timeout`` of :func:`SYNCHRONIZE`, in seconds.
MAX_TIMEOUT = _MAX_TIMEOUT

# The patterns are written in private modules; they keep this module's name, as
# before the split (for pickle, reprs and the names users see).
for _name in __all__:
    _public = globals()[_name]
    if callable(_public):
        _public.__module__ = __name__
del _name, _public
