"""The modes the contract suite runs in, and the recorders its tasks and observers fill.

A :class:`Mode` hides how one kind of engine is built, fed, resumed and read
back, so that a contract test reads the same in every mode:

* the tokens a test writes are plain lists, ``["t0"]``, ``["t1"]``, ...: the
  token's name, then the labels of the tasks that ran on it, appended by the
  tasks themselves (see :class:`Recorder`);
* tasks reach that list with :func:`data`, whatever the engine hands them
  (the list itself, a stored :class:`~workflow.storage.Token`, a database row);
* :meth:`Mode.payloads` reads the lists back from where the engine keeps them
  (the database, for the persistent and database modes).

A mode may also have an :class:`Observer`: signal receivers, the debug log, or
an overridden ``execute_callback``. What it saw of the tasks must be exactly
the tasks that ran.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from sqlalchemy.orm import Session

from workflow import signals
from workflow.engine import GenericWorkflowEngine, JumpTask
from workflow.engine_db import DbWorkflowEngine
from workflow.errors import HaltProcessing
from workflow.storage import PersistentWorkflowEngine, Store

from .dbmodel import TokenRow, WorkflowRow

Task = Callable[[Any, Any], Any]

#: Every signal of :mod:`workflow.signals`.
ALL_SIGNALS = [getattr(signals, name) for name in signals.__all__]


def data(obj: Any) -> Any:
    """Return a token's payload: the token itself (a list), or its ``data``."""
    return obj if isinstance(obj, list) else obj.data


def token_name(obj: Any) -> str:
    """Return the name a test gave a token (``'t0'``, ...)."""
    return str(data(obj)[0])


def task_name(task: Any) -> str:
    name = getattr(task, "__name__", None)
    return name if isinstance(name, str) else repr(task)


def items(count: int = 3, prefix: str = "t") -> list[list[str]]:
    """Return ``count`` fresh token payloads: ``[["t0"], ["t1"], ...]``."""
    return [[f"{prefix}{index}"] for index in range(count)]


# -- what the tasks record ------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One call of a recording task."""

    token: str
    name: str
    label: str
    callback_pos: list[int]


class Recorder:
    """Makes tasks that record each call of theirs and append their label to the payload."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        #: The calls (indexes in :attr:`calls`) whose task raised.
        self.raised: set[int] = set()
        self.names: set[str] = set()

    def task(
        self,
        label: str,
        *,
        text: Callable[[Any, Any], str] | None = None,
        then: Task | None = None,
    ) -> Task:
        """Return a task that records ``label`` (or ``text(obj, eng)``) and appends it.

        The task is named ``rec_<label>``, a name no log line uses otherwise;
        after recording it calls ``then(obj, eng)``, which may halt or raise.
        """
        name = f"rec_{label}"
        self.names.add(name)

        def task(obj: Any, eng: Any) -> None:
            recorded = label if text is None else text(obj, eng)
            payload = data(obj)
            self.calls.append(Call(str(payload[0]), name, recorded, list(eng.state.callback_pos)))
            payload.append(recorded)
            if then is not None:
                index = len(self.calls) - 1
                try:
                    then(obj, eng)
                except BaseException:
                    self.raised.add(index)
                    raise

        task.__name__ = task.__qualname__ = name
        return task

    def tasks(self, *labels: str) -> list[Task]:
        return [self.task(label) for label in labels]

    def sequence(self, token: str | None = None) -> list[str]:
        """Return the labels recorded (for one token, or for all, in call order)."""
        return [call.label for call in self.calls if token is None or call.token == token]

    def sequences(self, tokens: Iterable[str]) -> dict[str, list[str]]:
        return {token: self.sequence(token) for token in tokens}

    def clear(self) -> None:
        self.calls.clear()
        self.raised.clear()


# -- what an observer sees -------------------------------------------------------------


@dataclass
class Seen:
    """A task as an observer reported it."""

    task: Any
    name: str
    callback_pos: list[int] | None


class ListHandler(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Observer:
    """What the observer of a mode saw: ``kind`` is ``signals``, ``log`` or ``execute``."""

    kind: str
    started: list[Seen] = field(default_factory=list)
    finished: list[Seen] = field(default_factory=list)
    records: list[logging.LogRecord] = field(default_factory=list)
    #: Every signal received, as ``(signal name, sender, keyword arguments)``.
    signals: list[tuple[str, Any, dict[str, Any]]] = field(default_factory=list)

    def clear(self) -> None:
        self.started.clear()
        self.finished.clear()
        self.records.clear()
        self.signals.clear()

    def task_names(self, known: Collection[str]) -> list[str]:
        """Return the names of the tasks seen, in order.

        For the debug log: the per-task DEBUG lines are those that name exactly
        one of the ``known`` tasks (as a whole word); a line quoting a whole
        definition names several and is not about one task.
        """
        if self.kind != "log":
            return [seen.name for seen in self.started]
        patterns = [(name, re.compile(rf"(?<![\w]){re.escape(name)}(?![\w])")) for name in known]
        names: list[str] = []
        for record in self.records:
            if record.levelno != logging.DEBUG:
                continue
            message = record.getMessage()
            found = [name for name, pattern in patterns if pattern.search(message)]
            if len(found) == 1:
                names += found
        return names

    def jump_items(self) -> list[Any]:
        """Return the pattern-internal jump items that were reported as tasks."""
        return [seen.task for seen in self.started if isinstance(seen.task, JumpTask)]


def walk(definition: Any) -> Iterator[Any]:
    """Yield every item of a (nested) definition that is not a list or a tuple."""
    for item in definition:
        if isinstance(item, (list, tuple)):
            yield from walk(item)
        else:
            yield item


def hidden_names(definition: Any) -> set[str]:
    """Return the names of the definition's jump items that no real task shares."""
    jumps = {task_name(item) for item in walk(definition) if isinstance(item, JumpTask)}
    real = {task_name(item) for item in walk(definition) if not isinstance(item, JumpTask)}
    return jumps - real


# -- the modes -------------------------------------------------------------------------------


@dataclass
class Mode:
    """How the suite builds, runs, resumes and reads back one kind of engine."""

    name: str
    observer: Observer | None = None

    #: Reach a token's payload from a task (:func:`data`).
    data = staticmethod(data)

    @property
    def persistent(self) -> bool:
        return False

    def engine(self, definition: Any) -> GenericWorkflowEngine:
        """Return a new engine running ``definition``."""
        raise NotImplementedError

    def process(self, eng: GenericWorkflowEngine, payloads: list[Any], **options: Any) -> None:
        """Turn ``payloads`` into this engine's tokens and ``process()`` them."""
        raise NotImplementedError

    def process_again(
        self, eng: GenericWorkflowEngine, payloads: list[Any], **options: Any
    ) -> GenericWorkflowEngine:
        """Run a second list of tokens after a first one; return the engine that ran it.

        The generic and database engines run it on the same engine. A stored
        workflow keeps its tokens, so the persistent modes run it as a new stored
        workflow with the same definition.
        """
        self.process(eng, payloads, **options)
        return eng

    def resume(self, eng: GenericWorkflowEngine, **options: Any) -> None:
        """Go on with a halted run, after the task that halted."""
        eng.restart("current", "next", **options)

    def resume_until_done(self, eng: GenericWorkflowEngine, limit: int = 10) -> int:
        """Resume until the run no longer halts; return how many resumes it took."""
        for count in range(1, limit + 1):
            try:
                self.resume(eng)
            except HaltProcessing:
                continue
            return count
        raise AssertionError(f"the run still halts after {limit} resumes")

    def resume_halted_tokens(
        self, eng: GenericWorkflowEngine, halts: list[tuple[int, list[int]]]
    ) -> None:
        """Resume each halted token, given as ``(token_pos, callback_pos of its halt)``.

        Each token resumes alone, at its own index: the run is restarted over
        the tokens up to it, from the position of its halt.
        """
        tokens = self.tokens(eng)
        for token_pos, callback_pos in halts:
            eng.state.token_pos = token_pos
            eng.state.callback_pos = callback_pos
            eng.restart("current", "next", objects=tokens[: token_pos + 1])

    def tokens(self, eng: GenericWorkflowEngine) -> list[Any]:
        """Return the tokens of ``eng``'s last run, as the engine holds them."""
        raise NotImplementedError

    def payloads(self, eng: GenericWorkflowEngine) -> list[Any]:
        """Return the payloads of ``eng``'s last run, as stored (``list`` copies)."""
        return [list(data(token)) for token in self.tokens(eng)]

    def close(self) -> None:
        """Free what the mode holds."""


@dataclass
class GenericMode(Mode):
    """A :class:`GenericWorkflowEngine` (or subclass); the tokens are the payload lists."""

    engine_cls: type[GenericWorkflowEngine] = GenericWorkflowEngine
    _runs: dict[int, list[Any]] = field(default_factory=dict)

    def engine(self, definition: Any) -> GenericWorkflowEngine:
        eng = self.engine_cls()
        eng.callbacks.replace(definition)
        return eng

    def process(self, eng: GenericWorkflowEngine, payloads: list[Any], **options: Any) -> None:
        tokens = [list(payload) for payload in payloads]
        self._runs[id(eng)] = tokens
        eng.process(tokens, **options)

    def tokens(self, eng: GenericWorkflowEngine) -> list[Any]:
        return self._runs[id(eng)]


@dataclass
class PersistentMode(Mode):
    """A :class:`PersistentWorkflowEngine` on a SQLite file; tasks receive ``Token`` objects."""

    store: Store | None = None
    checkpoint: str = "token"

    @property
    def persistent(self) -> bool:
        return True

    def engine(self, definition: Any) -> PersistentWorkflowEngine:
        assert self.store is not None
        return PersistentWorkflowEngine.with_name(
            "contract", store=self.store, definition=definition, checkpoint=self.checkpoint
        )

    def process(self, eng: GenericWorkflowEngine, payloads: list[Any], **options: Any) -> None:
        eng.process([list(payload) for payload in payloads], **options)

    def process_again(
        self, eng: GenericWorkflowEngine, payloads: list[Any], **options: Any
    ) -> GenericWorkflowEngine:
        again = self.engine(eng.callbacks.get())
        self.process(again, payloads, **options)
        return again

    def resume(self, eng: GenericWorkflowEngine, **options: Any) -> None:
        assert isinstance(eng, PersistentWorkflowEngine)
        eng.resume(**options)

    def resume_halted_tokens(
        self, eng: GenericWorkflowEngine, halts: list[tuple[int, list[int]]]
    ) -> None:
        assert isinstance(eng, PersistentWorkflowEngine)
        eng.resume(stop_on_halt=False)

    def tokens(self, eng: GenericWorkflowEngine) -> list[Any]:
        assert isinstance(eng, PersistentWorkflowEngine)
        return list(eng.load_tokens())

    def close(self) -> None:
        if self.store is not None:
            self.store.dispose()


@dataclass
class DbMode(Mode):
    """A :class:`DbWorkflowEngine` over :mod:`.dbmodel` rows in an in-memory SQLite database."""

    session: Session | None = None
    _runs: dict[int, list[TokenRow]] = field(default_factory=dict)

    @property
    def persistent(self) -> bool:
        return True

    def engine(self, definition: Any) -> DbWorkflowEngine:
        assert self.session is not None
        row = WorkflowRow(uuid=str(uuid4()), name="contract")
        self.session.add(row)
        self.session.commit()
        eng = DbWorkflowEngine(row)
        eng.callbacks.replace(definition)
        return eng

    def process(self, eng: GenericWorkflowEngine, payloads: list[Any], **options: Any) -> None:
        assert isinstance(eng, DbWorkflowEngine)
        assert self.session is not None
        rows = [TokenRow(data=list(payload)) for payload in payloads]
        eng.db_obj.objects.extend(rows)
        self.session.commit()
        self._runs[id(eng)] = rows
        eng.process(rows, **options)

    def tokens(self, eng: GenericWorkflowEngine) -> list[Any]:
        return list(self._runs[id(eng)])

    def payloads(self, eng: GenericWorkflowEngine) -> list[Any]:
        assert self.session is not None
        self.session.expire_all()  # read what was committed
        return super().payloads(eng)

    def close(self) -> None:
        if self.session is not None:
            bind = self.session.get_bind()
            self.session.close()
            bind.dispose()  # type: ignore[union-attr]


# -- the observer checks -----------------------------------------------------------------------


def assert_observers_saw_the_real_tasks(mode: Mode, recorder: Recorder, definition: Any) -> None:
    """Check that the mode's observer saw exactly the tasks that ran (modes without one pass).

    Signal receivers and ``execute_callback`` see each real task once, in the
    order they ran, and never a pattern's internal jump item; ``task_started``
    and ``task_finished`` give the task's own ``callback_pos``. The debug log
    names the real tasks in the order they ran (one or two lines each) and
    never a jump item.
    """
    observer = mode.observer
    if observer is None:
        return  # nothing observes the tasks in this mode
    hidden = hidden_names(definition)
    known = recorder.names | hidden | {task_name(item) for item in walk(definition)}
    seen = observer.task_names(known)
    assert observer.jump_items() == [], "pattern-internal jump items were reported as tasks"
    assert [name for name in seen if name in hidden] == [], (
        "pattern-internal jump items were reported as tasks"
    )
    ran = [call.name for call in recorder.calls]
    mine = [name for name in seen if name in recorder.names]
    if observer.kind == "log":
        assert mine in (ran, [name for name in ran for _ in (0, 1)])
    else:
        assert mine == ran
    if observer.kind == "signals":
        assert [
            (seen.name, seen.callback_pos)
            for seen in observer.started
            if seen.name in recorder.names
        ] == [(call.name, call.callback_pos) for call in recorder.calls]
        returned = [
            (call.name, call.callback_pos)
            for index, call in enumerate(recorder.calls)
            if index not in recorder.raised
        ]
        assert [
            (seen.name, seen.callback_pos)
            for seen in observer.finished
            if seen.name in recorder.names
        ] == returned
        assert [seen.name for seen in observer.finished if seen.name in hidden] == []
