"""The engine's position: which token, and which task inside the callback tree."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._program import EDITS, Program
from .errors import WorkflowTypeError, WorkflowValueError
from .utils import classproperty

__all__ = ["MachineState"]


def _as_position(value: Iterable[int]) -> list[int]:
    """Return a fresh position list, or raise a clear error for a bad one."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise WorkflowTypeError(
            f"callback_pos must be a list of int (an index path such as [1, 0]), "
            f"got {type(value).__name__}: {value!r}"
        )
    position = list(value)
    if not position or not all(type(index) is int for index in position):
        raise WorkflowTypeError(f"callback_pos must be a non-empty list of int, got {position!r}")
    return position


class MachineState:
    """Where an engine is: the token it processes and the task it runs.

    :param token_pos: index of the current token in the engine's ``objects``;
        ``-1`` before the first token (the engine adds one before fetching).
    :param callback_pos: the index path of the current task in the nested
        callback lists, e.g. ``[1, 2, 0]``. The list is copied.
    """

    __slots__ = (
        "__weakref__",
        "_attention",
        "_callback_pos",
        "_ip",
        "_prefix",
        "_program",
        "_shown",
        "_token_pos",
        "current_object_processed",
    )

    def __init__(
        self, token_pos: int | None = None, callback_pos: Iterable[int] | None = None
    ) -> None:
        self._token_pos = -1
        if token_pos is not None:
            self.token_pos = token_pos
        self._callback_pos = [0] if callback_pos is None else _as_position(callback_pos)
        #: Whether the last pass over the tokens ran to its end.
        self.current_object_processed = False
        self._running_nothing()

    def _running_nothing(self) -> None:
        # While the engine runs a token, the position is the slot ``_ip`` of
        # ``_program`` (under the path ``_prefix``), turned into a list only
        # when somebody asks (``_shown`` is the slot that list shows). Asking,
        # setting the position, or a definition that changes sets
        # ``_attention``: the engine then looks again after the running task.
        self._program: Program | None = None
        self._prefix: tuple[int, ...] = ()
        self._ip = 0
        self._shown = -1
        self._attention = False
        EDITS.add(self)

    @property
    def token_pos(self) -> int:
        """Index of the token being (or last) processed; ``-1`` before the first."""
        return self._token_pos

    @token_pos.setter
    def token_pos(self, value: int) -> None:
        if type(value) is not int:
            raise WorkflowTypeError(
                f"token_pos must be an int, got {type(value).__name__}: {value!r}"
            )
        if value < -1:
            raise WorkflowValueError(f"token_pos must be -1 or more, got {value}")
        self._token_pos = value

    @property
    def callback_pos(self) -> list[int]:
        """Index path of the current task in the nested callback lists.

        While a task runs it points at that task; after a halt or an error it
        still does, which is where :meth:`restart` resumes. Assigning copies
        the value and checks that it is a non-empty list of int.
        """
        program = self._program
        if program is not None:
            ip = self._ip
            if self._shown != ip:
                self._callback_pos = [*self._prefix, *program.paths[ip]]
                self._shown = ip
            self._attention = True
        return self._callback_pos

    @callback_pos.setter
    def callback_pos(self, value: Iterable[int]) -> None:
        self._callback_pos = _as_position(value)
        if self._program is not None:
            self._shown = self._ip
            self._attention = True

    @property
    def position(self) -> tuple[int, ...]:
        """The current ``callback_pos`` as a tuple: cheap, and it cannot be changed.

        Read it to know where the engine is (patterns key their state by it);
        assign :attr:`callback_pos` to move.

        .. versionadded:: 3.0
        """
        program = self._program
        if program is not None and self._shown != self._ip:
            prefix = self._prefix
            path = program.paths[self._ip]
            return prefix + path if prefix else path
        return tuple(self._callback_pos)

    def _current(self) -> list[int]:
        """Return a copy of the position, asking nothing of the running engine."""
        return list(self.position)

    @classproperty
    def _state_keys(cls) -> tuple[str, ...]:
        return ("token_pos", "callback_pos", "current_object_processed")

    def reset(self) -> None:
        """Go back to the start: before the first token, at the first task."""
        self.token_pos_reset()
        self.callback_pos_reset()
        self.current_object_processed = False

    def token_pos_reset(self) -> None:
        """Set ``token_pos`` back to ``-1``."""
        self._token_pos = -1

    def callback_pos_reset(self) -> None:
        """Set ``callback_pos`` to a new ``[0]``."""
        self._callback_pos = [0]

    def to_dict(self) -> dict[str, Any]:
        """Return the state as a JSON-serialisable dict.

        .. versionadded:: 3.0
        """
        return {
            "token_pos": self._token_pos,
            "callback_pos": self._current(),
            "current_object_processed": self.current_object_processed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MachineState:
        """Build a state from the output of :meth:`to_dict`.

        .. versionadded:: 3.0
        """
        state = cls(data["token_pos"], data["callback_pos"])
        state.current_object_processed = bool(data.get("current_object_processed", False))
        return state

    def __getstate__(self) -> dict[str, Any]:
        return self.to_dict()

    def __setstate__(self, data: dict[str, Any]) -> None:
        self._token_pos = -1
        self.token_pos = data["token_pos"]
        self._callback_pos = _as_position(data["callback_pos"])
        self.current_object_processed = bool(data.get("current_object_processed", False))
        self._running_nothing()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MachineState):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"MachineState(token_pos={self._token_pos}, callback_pos={self._current()!r})"
