"""The camelCase engine methods of Invenio ``workflow`` 1.x/2.x, kept working.

Each one warns with :class:`DeprecationWarning` and calls its snake_case
successor, named in the warning.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, NoReturn

from .errors import JumpTokenBack, JumpTokenForward, WorkflowError

if TYPE_CHECKING:
    from ._callbacks import Callbacks
    from ._state import MachineState
    from .engine import GenericWorkflowEngine

__all__ = ["LegacyEngineAPI"]


def _warn(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=3)


class LegacyEngineAPI:
    """Deprecated aliases mixed into :class:`~workflow.engine.GenericWorkflowEngine`."""

    if TYPE_CHECKING:
        callbacks: Callbacks
        state: MachineState
        extra_data: dict[str, Any]

        def halt(self, msg: str = "", action: str | None = None, payload: Any = None) -> None: ...
        def continue_next_token(self) -> None: ...
        def stop(self) -> None: ...
        def break_current_loop(self) -> None: ...
        def jump_call(self, offset: int) -> None: ...
        @staticmethod
        def jump_token(offset: int) -> None: ...
        @staticmethod
        def skip_token() -> None: ...
        @staticmethod
        def abort() -> None: ...

    @staticmethod
    def abortProcessing() -> None:
        """Deprecated: use :meth:`abort`."""
        _warn("abortProcessing()", "abort()")
        from .errors import AbortProcessing

        raise AbortProcessing

    @staticmethod
    def skipToken() -> None:
        """Deprecated: use :meth:`skip_token`."""
        _warn("skipToken()", "skip_token()")
        from .errors import SkipToken

        raise SkipToken

    @property
    def store(self) -> dict[str, Any]:
        """Deprecated: use :attr:`extra_data`."""
        _warn("eng.store", "eng.extra_data")
        return self.extra_data

    def setWorkflow(self, list_or_tuple: Any) -> None:
        """Deprecated: use ``eng.callbacks.replace(definition)``."""
        _warn("setWorkflow()", "eng.callbacks.replace()")
        self.callbacks.replace(list_or_tuple)

    def setPosition(self, token_pos: int, callback_pos: list[int]) -> None:
        """Deprecated: set ``eng.state.token_pos`` and ``eng.state.callback_pos``."""
        _warn("setPosition()", "eng.state.token_pos / eng.state.callback_pos")
        self.state.token_pos = token_pos
        self.state.callback_pos = callback_pos

    def getCallbacks(self, key: str = "*") -> Any:
        """Deprecated: use ``eng.callbacks.get(key)``."""
        _warn("getCallbacks()", "eng.callbacks.get()")
        return self.callbacks.get(key)

    def addCallback(
        self,
        key: str,
        func: Any,
        before: Any = None,
        after: Any = None,
        relative_weight: Any = None,
    ) -> None:
        """Deprecated: use ``eng.callbacks.add(func, key)``; the extra arguments are ignored."""
        _warn("addCallback()", "eng.callbacks.add()")
        self.callbacks.add(func, key)

    def addManyCallbacks(self, key: str, list_or_tuple: Any) -> None:
        """Deprecated: use ``eng.callbacks.add_many(definition, key)``."""
        _warn("addManyCallbacks()", "eng.callbacks.add_many()")
        self.callbacks.add_many(list_or_tuple, key)

    def removeAllCallbacks(self) -> None:
        """Deprecated: use ``eng.callbacks.clear_all()``."""
        _warn("removeAllCallbacks()", "eng.callbacks.clear_all()")
        self.callbacks.clear_all()

    def removeCallbacks(self, key: str) -> None:
        """Deprecated: use ``eng.callbacks.clear(key)``."""
        _warn("removeCallbacks()", "eng.callbacks.clear()")
        self.callbacks.clear(key)

    def replaceCallbacks(self, key: str, funcs: Any) -> None:
        """Deprecated: use ``eng.callbacks.replace(funcs, key)``."""
        _warn("replaceCallbacks()", "eng.callbacks.replace()")
        self.callbacks.replace(funcs, key)

    def getCurrObjId(self) -> int:
        """Deprecated: use ``eng.state.token_pos``."""
        _warn("getCurrObjId()", "eng.state.token_pos")
        return self.state.token_pos

    def getCurrTaskId(self) -> list[int]:
        """Deprecated: use ``eng.state.callback_pos``."""
        _warn("getCurrTaskId()", "eng.state.callback_pos")
        return self.state.callback_pos

    def duplicate(self) -> GenericWorkflowEngine:
        """Deprecated: return a new, empty engine of the same class."""
        _warn("duplicate()", "a new engine")
        return type(self)()  # type: ignore[return-value]

    def jumpTokenForward(self, offset: int) -> NoReturn:
        """Deprecated: use :meth:`jump_token` with a positive offset."""
        _warn("jumpTokenForward()", "jump_token()")
        if offset < 0:
            raise WorkflowError("jumpTokenForward() cannot take a negative offset")
        raise JumpTokenForward(offset)

    def jumpTokenBack(self, offset: int) -> NoReturn:
        """Deprecated: use :meth:`jump_token` with a negative offset."""
        _warn("jumpTokenBack()", "jump_token()")
        if offset > 0:
            raise WorkflowError("jumpTokenBack() cannot take a positive offset")
        raise JumpTokenBack(offset)

    def jumpCallForward(self, offset: int) -> None:
        """Deprecated: use :meth:`jump_call` with a positive offset."""
        _warn("jumpCallForward()", "jump_call()")
        if offset < 0:
            raise WorkflowError("jumpCallForward() cannot take a negative offset")
        self.jump_call(offset)

    def jumpCallBack(self, offset: int) -> None:
        """Deprecated: use :meth:`jump_call` with a negative offset."""
        _warn("jumpCallBack()", "jump_call()")
        if offset > 0:
            raise WorkflowError("jumpCallBack() cannot take a positive offset")
        self.jump_call(offset)

    def setVar(self, key: str, what: Any) -> None:
        """Deprecated: use ``eng.extra_data[key] = what``."""
        _warn("setVar()", "eng.extra_data")
        self.extra_data[key] = what

    def getVar(self, key: str, default: Any = None) -> Any:
        """Deprecated: use ``eng.extra_data.get(key)``; stores a non-None default."""
        _warn("getVar()", "eng.extra_data")
        if key in self.extra_data:
            return self.extra_data[key]
        if default is not None:
            self.extra_data[key] = default
        return default

    def hasVar(self, key: str) -> bool:
        """Deprecated: use ``key in eng.extra_data``."""
        _warn("hasVar()", "eng.extra_data")
        return key in self.extra_data

    def delVar(self, key: str) -> None:
        """Deprecated: use ``del eng.extra_data[key]``."""
        _warn("delVar()", "eng.extra_data")
        self.extra_data.pop(key, None)

    def haltProcessing(self, msg: str = "", action: str | None = None, payload: Any = None) -> None:
        """Deprecated: use :meth:`halt`."""
        _warn("haltProcessing()", "halt()")
        self.halt(msg, action, payload)

    def continueNextToken(self) -> None:
        """Deprecated: use :meth:`continue_next_token`."""
        _warn("continueNextToken()", "continue_next_token()")
        self.continue_next_token()

    def stopProcessing(self) -> None:
        """Deprecated: use :meth:`stop`."""
        _warn("stopProcessing()", "stop()")
        self.stop()

    def breakFromThisLoop(self) -> None:
        """Deprecated: use :meth:`break_current_loop`."""
        _warn("breakFromThisLoop()", "break_current_loop()")
        self.break_current_loop()

    def jumpToken(self, offset: int) -> None:
        """Deprecated: use :meth:`jump_token`."""
        _warn("jumpToken()", "jump_token()")
        self.jump_token(offset)

    def jumpCall(self, offset: int) -> None:
        """Deprecated: use :meth:`jump_call`."""
        _warn("jumpCall()", "jump_call()")
        self.jump_call(offset)
