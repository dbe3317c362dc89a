"""Signals the engine sends, on our own :class:`blinker.Namespace`.

Every signal is sent with the engine as *sender*. Connect a receiver with
``signal.connect(receiver)`` (or ``connect(receiver, sender=engine)`` for one
engine); it is called as ``receiver(engine, **kwargs)`` with the keyword
arguments listed for each signal.

The four signals of Invenio ``workflow`` 2.x (:data:`workflow_started`,
:data:`workflow_finished`, :data:`workflow_halted`, :data:`workflow_error`) keep
their names. The finer signals about single tokens and tasks are only built
when somebody listens, so they cost nothing otherwise.
"""

from __future__ import annotations

from blinker import Namespace

__all__ = [
    "task_finished",
    "task_started",
    "token_finished",
    "token_halted",
    "token_started",
    "workflow_error",
    "workflow_finished",
    "workflow_halted",
    "workflow_started",
]

_signals = Namespace()

workflow_started = _signals.signal(
    "workflow_started",
    doc="""Sent when a pass over the tokens begins: by ``process()``, and by
    every ``restart()``. No keyword arguments.""",
)

workflow_finished = _signals.signal(
    "workflow_finished",
    doc="""Sent when a pass over the tokens ends without a halt or an error:
    after the last token, after ``stop()`` and after ``abort()``. No keyword
    arguments.""",
)

workflow_halted = _signals.signal(
    "workflow_halted",
    doc="""Sent when a task halts the engine (``eng.halt()``). No keyword
    arguments: the engine's ``state`` and ``current_object`` say where.""",
)

workflow_error = _signals.signal(
    "workflow_error",
    doc="""Sent when a task raises an exception that is not a transition.

    :keyword exception: the exception the task raised.""",
)

token_started = _signals.signal(
    "token_started",
    doc="""Sent before the first task runs for a token.

    :keyword token: the token.
    :keyword token_pos: its index in the engine's ``objects``.""",
)

token_finished = _signals.signal(
    "token_finished",
    doc="""Sent after the last task ran for a token that was not halted,
    stopped or failed.

    :keyword token: the token.
    :keyword token_pos: its index in the engine's ``objects``.""",
)

token_halted = _signals.signal(
    "token_halted",
    doc="""Sent when a task halts on a token.

    :keyword token: the token.
    :keyword token_pos: its index in the engine's ``objects``.
    :keyword exception: the :class:`~workflow.errors.HaltProcessing` raised.""",
)

task_started = _signals.signal(
    "task_started",
    doc="""Sent before a task is called.

    :keyword token: the token the task is called with.
    :keyword task: the task.
    :keyword callback_pos: a copy of the task's position (a list of int).""",
)

task_finished = _signals.signal(
    "task_finished",
    doc="""Sent after a task returned normally.

    :keyword token: the token the task was called with.
    :keyword task: the task.
    :keyword callback_pos: a copy of the task's position (a list of int).""",
)
