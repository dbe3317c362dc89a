"""Task factories and debugging helpers, at their Invenio ``workflow`` 2.x path.

Each factory builds a task, a callable ``task(obj, eng)`` to put in a
workflow definition; :func:`with_nice_docs` gives every one of them an
optional ``comment=`` keyword. Only the names of Invenio ``workflow`` 2.x
live here; they differ from 2.x where 2.x was broken, as each docstring says.
"""

from __future__ import annotations

from ._data import EMPTY_CALL, ENG_GET, ENG_SET, OBJ_GET, OBJ_SET
from ._debugging import CALLFUNC, DEBUG_CYCLE, PROFILE, debug_simple, universal_repeater
from ._failures import ERROR, TRY
from ._nice_docs import Task as Task  # the type of a task, importable from here as before
from ._nice_docs import with_nice_docs
from ._subflows import RUN_WF

__all__ = [
    "CALLFUNC",
    "DEBUG_CYCLE",
    "EMPTY_CALL",
    "ENG_GET",
    "ENG_SET",
    "ERROR",
    "OBJ_GET",
    "OBJ_SET",
    "PROFILE",
    "RUN_WF",
    "TRY",
    "debug_simple",
    "universal_repeater",
    "with_nice_docs",
]

# The factories are written in private modules; they keep this module's name, as
# before the split (for pickle, reprs and the names users see).
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
