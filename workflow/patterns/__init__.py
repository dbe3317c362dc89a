"""Control-flow patterns and task factories for workflow definitions.

This package re-exports the 27 names that Invenio ``workflow`` 2.x exported
from ``workflow.patterns``, and also :func:`~workflow.patterns.controlflow.HALT`,
:func:`~workflow.patterns.controlflow.CMP` and
:func:`~workflow.patterns.controlflow.FOR`, which 2.x only offered from
:mod:`workflow.patterns.controlflow` (where they still are).

.. versionchanged:: 3.0
   ``HALT``, ``CMP`` and ``FOR`` are exported here too.
"""

from __future__ import annotations

from .controlflow import (
    BREAK,
    CHOICE,
    CMP,
    FOR,
    HALT,
    IF,
    IF_ELSE,
    IF_NOT,
    OBJ_JUMP_BWD,
    OBJ_JUMP_FWD,
    OBJ_NEXT,
    PARALLEL_SPLIT,
    SIMPLE_MERGE,
    STOP,
    SYNCHRONIZE,
    TASK_JUMP_BWD,
    TASK_JUMP_FWD,
    TASK_JUMP_IF,
    WHILE,
)
from .utils import (
    CALLFUNC,
    DEBUG_CYCLE,
    EMPTY_CALL,
    ENG_GET,
    ENG_SET,
    ERROR,
    OBJ_GET,
    OBJ_SET,
    PROFILE,
    RUN_WF,
    TRY,
)

__all__ = [
    "BREAK",
    "CALLFUNC",
    "CHOICE",
    "CMP",
    "DEBUG_CYCLE",
    "EMPTY_CALL",
    "ENG_GET",
    "ENG_SET",
    "ERROR",
    "FOR",
    "HALT",
    "IF",
    "IF_ELSE",
    "IF_NOT",
    "OBJ_GET",
    "OBJ_JUMP_BWD",
    "OBJ_JUMP_FWD",
    "OBJ_NEXT",
    "OBJ_SET",
    "PARALLEL_SPLIT",
    "PROFILE",
    "RUN_WF",
    "SIMPLE_MERGE",
    "STOP",
    "SYNCHRONIZE",
    "TASK_JUMP_BWD",
    "TASK_JUMP_FWD",
    "TASK_JUMP_IF",
    "TRY",
    "WHILE",
]
