"""Push tokens through pipelines of Python callables; halt, resume, persist.

``import workflow`` needs only :mod:`blinker`. The engine lives in
:mod:`workflow.engine`, the control-flow patterns in :mod:`workflow.patterns`,
the exceptions in :mod:`workflow.errors` and the signals in
:mod:`workflow.signals`.
"""

from __future__ import annotations

from ._state import MachineState
from .engine import Callbacks, GenericWorkflowEngine
from .errors import HaltProcessing, WorkflowError

__version__ = "3.0.0.dev0"

__all__ = [
    "Callbacks",
    "GenericWorkflowEngine",
    "HaltProcessing",
    "MachineState",
    "WorkflowError",
    "__version__",
]
