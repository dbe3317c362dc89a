"""The ``mode`` fixture: every contract test runs once per engine and per observer.

======================  ================================================================
id                      engine
======================  ================================================================
``plain``               :class:`GenericWorkflowEngine`, nothing connected
``receivers``           the same, with a receiver on every signal of :mod:`workflow.signals`
``debug-log``           the same, with the ``workflow`` logger at DEBUG
``execute-callback``    a subclass overriding ``execute_callback`` (it counts the calls)
``persistent-token``    :class:`PersistentWorkflowEngine`, ``checkpoint="token"``
``persistent-task``     the same, ``checkpoint="task"``
``persistent-halt``     the same, ``checkpoint="halt"``
``db-model``            :class:`DbWorkflowEngine` over the model of :mod:`.dbmodel`
======================  ================================================================
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from workflow.engine import GenericWorkflowEngine
from workflow.storage import Store

from .dbmodel import Base
from .modes import (
    ALL_SIGNALS,
    DbMode,
    GenericMode,
    ListHandler,
    Mode,
    Observer,
    PersistentMode,
    Seen,
    task_name,
)

GENERIC_MODES = ["plain", "receivers", "debug-log", "execute-callback"]
PERSISTENT_MODES = ["persistent-token", "persistent-task", "persistent-halt"]
MODES = [*GENERIC_MODES, *PERSISTENT_MODES, "db-model"]


def _receiver(observer: Observer, signal_name: str) -> Any:
    def receive(sender: Any, **kwargs: Any) -> None:
        observer.signals.append((signal_name, sender, kwargs))
        if signal_name in ("task_started", "task_finished"):
            task = kwargs["task"]
            seen = Seen(task, task_name(task), list(kwargs["callback_pos"]))
            (observer.started if signal_name == "task_started" else observer.finished).append(seen)

    return receive


def _execute_callback_engine(observer: Observer) -> type[GenericWorkflowEngine]:
    class ExecuteCallbackEngine(GenericWorkflowEngine):
        """Calls each task itself, counting the calls."""

        def execute_callback(self, callback: Any, obj: Any) -> None:
            observer.started.append(Seen(callback, task_name(callback), None))
            callback(obj, self)

    return ExecuteCallbackEngine


def build_mode(name: str, tmp_path: Path, stack: ExitStack) -> Mode:
    """Build the mode ``name``; ``stack`` undoes what it connected or opened."""
    if name == "plain":
        return GenericMode(name)
    if name == "receivers":
        observer = Observer("signals")
        for signal in ALL_SIGNALS:
            stack.enter_context(signal.connected_to(_receiver(observer, signal.name)))
        return GenericMode(name, observer)
    if name == "debug-log":
        observer = Observer("log")
        logger = logging.getLogger("workflow")
        handler = ListHandler(observer.records)
        level = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)

        def restore() -> None:
            logger.removeHandler(handler)
            logger.setLevel(level)

        stack.callback(restore)
        return GenericMode(name, observer)
    if name == "execute-callback":
        observer = Observer("execute")
        return GenericMode(name, observer, engine_cls=_execute_callback_engine(observer))
    if name in PERSISTENT_MODES:
        store = Store(f"sqlite:///{tmp_path / 'contract.sqlite'}")
        store.create_all()
        mode = PersistentMode(name, store=store, checkpoint=name.removeprefix("persistent-"))
        stack.callback(mode.close)
        return mode
    if name == "db-model":
        engine = create_engine("sqlite://")
        Base.metadata.create_all(engine)
        db_mode = DbMode(name, session=Session(engine))
        stack.callback(db_mode.close)
        return db_mode
    raise ValueError(f"unknown mode {name!r}")


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Mode]:
    """The engine under test, in each mode of the contract."""
    with ExitStack() as stack:
        yield build_mode(request.param, tmp_path, stack)


@pytest.fixture(params=PERSISTENT_MODES)
def persistent_mode(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PersistentMode]:
    """The persistent engine, with each checkpoint policy."""
    with ExitStack() as stack:
        built = build_mode(request.param, tmp_path, stack)
        assert isinstance(built, PersistentMode)
        yield built


@pytest.fixture
def task_checkpoints(tmp_path: Path) -> Iterator[PersistentMode]:
    """The persistent engine with ``checkpoint="task"``."""
    with ExitStack() as stack:
        built = build_mode("persistent-task", tmp_path, stack)
        assert isinstance(built, PersistentMode)
        yield built
