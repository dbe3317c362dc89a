"""Declarative flows: JSON or YAML definitions over a registry of Python tasks.

A flow names registered tasks, passes them parameters that may refer to
earlier results (``@step``, ``@step.key``, ``@@literal``), and uses control
flow written as data (``if``, ``while``, ``for_each``, ``parallel``,
``halt``, calls to stored flows, ``needs`` for DAG-shaped flows).
:func:`load_flow` validates it, reporting every error at once;
:meth:`Flow.callbacks` compiles it into the callback tree any engine runs.

.. versionadded:: 3.0
"""

from ..errors import FlowAnswerError, FlowError, FlowRuntimeError, FlowValidationError
from ._flow import Flow, load_flow, validate_flow
from ._graph import GraphFormat
from ._limits import (
    MAX_DOCUMENT_DEPTH,
    MAX_DOCUMENT_VALUES,
    MAX_FILE_BYTES,
    MAX_NESTING,
    MAX_SCHEMA_VALUES,
    MAX_STEPS,
    MAX_VALUE_DEPTH,
)
from ._registry import ENTRY_POINT_GROUP, RegisteredTask, TaskRegistry, default_registry, task
from ._resume import apply_resume_data, context_of, halted_step
from ._schedules import flow_schedules
from ._schema import schema

__all__ = [
    "ENTRY_POINT_GROUP",
    "MAX_DOCUMENT_DEPTH",
    "MAX_DOCUMENT_VALUES",
    "MAX_FILE_BYTES",
    "MAX_NESTING",
    "MAX_SCHEMA_VALUES",
    "MAX_STEPS",
    "MAX_VALUE_DEPTH",
    "Flow",
    "FlowAnswerError",
    "FlowError",
    "FlowRuntimeError",
    "FlowValidationError",
    "GraphFormat",
    "RegisteredTask",
    "TaskRegistry",
    "apply_resume_data",
    "context_of",
    "default_registry",
    "flow_schedules",
    "halted_step",
    "load_flow",
    "schema",
    "task",
    "validate_flow",
]
