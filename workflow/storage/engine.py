"""The former home of :class:`~workflow.storage.PersistentWorkflowEngine`, kept for imports.

The engine lives in :mod:`workflow.storage.persistent`, its hooks in
:mod:`workflow.storage.hooks`; import them from :mod:`workflow.storage`.
"""

from __future__ import annotations

from .hooks import PersistentProcessingFactory, PersistentTransitionActions
from .persistent import PersistentWorkflowEngine
from .token import CheckpointPolicy, Token

__all__ = [
    "CheckpointPolicy",
    "PersistentProcessingFactory",
    "PersistentTransitionActions",
    "PersistentWorkflowEngine",
    "Token",
]
