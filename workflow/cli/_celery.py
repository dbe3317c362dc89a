"""``--celery BROKER_URL``: a work queue's tokens carried by Celery, for ``run`` and ``worker``.

``workflow run --queue NAME --celery URL`` stores and queues the run as
``--queue`` alone does, then sends one Celery message per token;
``workflow worker --queue NAME --celery URL`` is a real Celery worker (a
prefork pool of ``--concurrency`` processes) that runs the tokens those
messages name, with the settings of
:data:`~workflow.integrations.celery.SAFE_SETTINGS`, and an embedded beat
that sweeps (:meth:`~workflow.integrations.celery.CeleryQueue.sweep`):
it sends again what was never sent or came to nothing, fires the timers and
schedules that are due, and puts the tokens whose waits were decided back
on the queue. Everything is checked before anything is stored or started:
the ``celery`` extra, the URL, and that the broker answers.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from ._context import CLIError, Context, ExitCode

if TYPE_CHECKING:
    from workflow.integrations.celery import CeleryQueue
    from workflow.runtime.worker import Definitions

__all__ = ["add_celery_options", "broker_shown", "celery_queue", "run_celery_worker"]

log = logging.getLogger("workflow.cli")

#: Seconds the command waits for the broker to answer before it gives up.
CONNECT_TIMEOUT = 5.0

_URL_SHAPES = "redis://HOST:PORT/DB or amqp://USER:PASSWORD@HOST:PORT/VHOST"


def add_celery_options(parser: argparse.ArgumentParser, *, what: str) -> None:
    """Add ``--celery BROKER_URL`` and ``--celery-queue NAME``; ``what`` says what Celery does."""
    parser.add_argument(
        "--celery",
        metavar="BROKER_URL",
        help=f"{what} over the Celery broker BROKER_URL ({_URL_SHAPES}); needs the celery extra",
    )
    parser.add_argument(
        "--celery-queue",
        metavar="NAME",
        help="with --celery: the broker's queue the messages go to (default: workflow. and "
        "the --queue name); `run` and `worker` must name the same",
    )


def celery_queue(ctx: Context, definitions: Definitions, queue: str) -> CeleryQueue:
    """The :class:`~workflow.integrations.celery.CeleryQueue` that ``--celery`` names.

    :raises CLIError: (exit 2, naming the option) when the ``celery`` extra
        is missing, the URL names no broker Celery knows, the broker does not
        answer, or ``--celery-queue`` is no queue name.
    """
    args = ctx.args
    url: str = args.celery
    try:
        from workflow.integrations.celery import CeleryQueue
    except ImportError as exc:
        raise CLIError(f"--celery: {exc}") from None
    if "://" not in url:
        raise CLIError(f"--celery: {url!r} is not a broker URL: give {_URL_SHAPES}")
    try:
        carrier = CeleryQueue(
            url, ctx.url, definitions, queue=queue, celery_queue=args.celery_queue
        )
    except ValueError as exc:
        raise CLIError(f"--celery-queue: {exc}") from None
    try:
        connection = carrier.app.connection_for_write(connect_timeout=CONNECT_TIMEOUT)
        connection.transport_cls  # noqa: B018 - resolving it is the check
    except (KeyError, ImportError, ValueError) as exc:
        scheme = url.partition("://")[0]
        why = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise CLIError(
            f"--celery: {scheme}:// names no broker Celery can use ({why}): give {_URL_SHAPES}"
        ) from None
    with connection:
        try:
            connection.ensure_connection(max_retries=1, timeout=CONNECT_TIMEOUT)
        except Exception as exc:  # any failure to connect: driver, broker, network
            problem = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise CLIError(
                f"--celery: the broker at {broker_shown(carrier)} does not answer ({problem})"
            ) from None
    return carrier


def broker_shown(carrier: CeleryQueue) -> str:
    """The broker's URL of ``carrier`` as messages show it: without its password."""
    with carrier.app.connection_for_write() as connection:
        return str(connection.as_uri())


def run_celery_worker(ctx: Context, carrier: CeleryQueue, *, concurrency: int) -> int:
    """Run a Celery worker of ``carrier`` until SIGINT or SIGTERM; return the exit code.

    A prefork pool of ``concurrency`` processes runs the tokens; an embedded
    beat sends the sweep every few seconds. The first SIGINT or SIGTERM is a
    warm shutdown: the tasks that run finish (their messages are acknowledged
    after), then the worker exits with 0. A second SIGINT is Celery's cold
    shutdown: the tasks are abandoned, their messages go back to the broker,
    and the command exits with 130. Celery's own lines go to stderr, so that
    stdout holds only the command's report.
    """
    from celery import signals

    store = ctx.store()  # checks the schema (and creates the tables) before anything runs
    # The pool's processes are forked from this one: none may inherit an open connection.
    store.dispose()
    stopped: list[tuple[str, str]] = []
    shown = broker_shown(carrier)

    def ready(**_: Any) -> None:
        ctx.out.note(
            f"celery worker on {ctx.shown_url}: queue {carrier.queue!r} via "
            f"{carrier.celery_queue!r} at {shown}, {concurrency} process(es); "
            "Ctrl-C or SIGTERM stops it"
        )

    def shutting_down(sig: str = "", how: str = "", **_: Any) -> None:
        stopped.append((sig, how))
        if how == "Warm":
            _say(f"worker: {sig}: stopping once the running tasks are done (Ctrl-C again: now)\n")
        else:
            _say(f"worker: {sig}: stopping now; the running tasks' messages go back\n")

    signals.worker_ready.connect(ready, weak=False)
    signals.worker_shutting_down.connect(shutting_down, weak=False)
    worker = _quiet_worker(carrier)(
        hostname=f"workflow-{os.getpid()}@{socket.gethostname()}",
        concurrency=concurrency,
        pool_cls="prefork",
        queues=[carrier.celery_queue],
        beat=True,
        scheduler="celery.beat:Scheduler",  # in memory: the sweep needs no schedule file
        without_mingle=True,
        without_gossip=True,
        loglevel=logging.getLevelName(ctx.logs.level),
        hijack_root_logger=False,
        redirect_stdouts=False,
        quiet=True,
    )
    log.info("celery worker starting for queue %r", carrier.queue)
    try:
        worker.start()
    finally:
        signals.worker_ready.disconnect(ready)
        signals.worker_shutting_down.disconnect(shutting_down)
    sig, how = stopped[0] if stopped else ("", "")
    why = sig or "stopped"
    log.info("celery worker stopped (%s)", why)
    if ctx.out.json_mode:
        from ._output import dumps

        print(dumps({"stopped": why}, indent=None), file=ctx.out.stdout, flush=True)
    else:
        ctx.out.result(None, f"worker stopped ({why})")
    if stopped and stopped[-1][1] == "Cold":
        return int(ExitCode.INTERRUPTED)
    if how == "Warm":
        return int(ExitCode.OK)
    return int(ExitCode.ERROR if worker.exitcode else ExitCode.OK)


def _quiet_worker(carrier: CeleryQueue) -> Any:
    """The app's worker class, its shutdown handlers silent on stdout (see ``shutting_down``)."""
    from celery.apps import worker as apps_worker

    def on_sigint(worker: Any) -> None:  # a second Ctrl-C is a cold shutdown
        apps_worker.install_worker_term_hard_handler(worker, sig="SIGINT", verbose=False)

    class Worker(carrier.app.Worker):  # type: ignore[misc,name-defined]
        def install_platform_tweaks(self, worker: Any) -> None:
            super().install_platform_tweaks(worker)
            apps_worker.install_worker_term_handler(worker, verbose=False)
            apps_worker.install_worker_term_hard_handler(worker, verbose=False)
            apps_worker.install_worker_int_handler(worker, callback=on_sigint, verbose=False)

    return Worker


def _say(text: str) -> None:
    """Write ``text`` to stderr from a signal handler: one system call, no buffer."""
    with contextlib.suppress(OSError):
        os.write(2, text.encode("utf-8", "replace"))
