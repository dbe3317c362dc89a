"""The processes of ``workflow serve --workers N`` where each can listen on the port itself.

uvicorn's own ``--workers`` shares one listening socket among its
processes, and the first process to wake takes every connection waiting.
Connections opened together (a proxy's keep-alive pool, or clients that
start at once) then pile onto one process while the others idle: in
``benchmarks/bench_web.py`` 32 clients were held 22 to 10 by two processes.
Here each process opens a socket of its own on the port with
``SO_REUSEPORT`` (Linux), and the kernel spreads new connections evenly
over them. A process that ends is started again. SIGTERM or SIGINT stops
them all, each finishing the requests under way as uvicorn does.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from ._context import CLIError, ExitCode

__all__ = ["REUSE_PORT", "serve_group"]

log = logging.getLogger("workflow.cli")

#: Whether processes can each listen on one port here (else uvicorn's workers share a socket).
REUSE_PORT = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")

#: A process that ends sooner than this after its start counts as failing to start.
_QUICK = 5.0
#: After this many failed starts in a row the command gives up.
_FAILED_STARTS = 3
#: Seconds a process is given to finish its requests after SIGTERM.
_STOP_WAIT = 30.0


def _listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` in the port's ``SO_REUSEPORT`` group."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _serve_one(host: str, port: int, options: dict[str, Any]) -> None:
    """One server process: its own socket on the port, the app, uvicorn."""
    import uvicorn

    from ._serve_worker import worker_app

    app = worker_app()
    sock = _listening_socket(host, port)
    config = uvicorn.Config(app, host=host, port=port, **options)
    uvicorn.Server(config).run(sockets=[sock])


def serve_group(host: str, port: int, workers: int, options: dict[str, Any]) -> int:
    """Run ``workers`` server processes on ``host``:``port`` until SIGTERM or SIGINT.

    The processes take the app's settings from the environment (see
    :mod:`._serve_worker`): set them before.

    :raises CLIError: when the port cannot be had, or the processes keep
        ending as they start.
    """
    try:  # held while the command runs: the port is the group's, and a taken port fails here
        holder = _listening_socket(host, port)
    except OSError as exc:
        raise CLIError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    spawn = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        stopping.set()

    def start() -> tuple[Any, float]:
        process = spawn.Process(
            target=_serve_one, args=(host, port, options), name="workflow-serve", daemon=False
        )
        process.start()
        return process, time.monotonic()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    processes = [start() for _ in range(workers)]
    failed_starts = 0
    try:
        while not stopping.wait(0.2):
            for index, (process, started) in enumerate(processes):
                if process.exitcode is None:
                    continue
                quick = time.monotonic() - started < _QUICK
                failed_starts = failed_starts + 1 if quick else 0
                if failed_starts >= _FAILED_STARTS:
                    raise CLIError(
                        f"the server processes keep ending as they start (the last with exit "
                        f"code {process.exitcode}); see the messages above",
                        ExitCode.ERROR,
                    )
                log.warning(
                    "server process %d ended with exit code %s; starting another",
                    process.pid,
                    process.exitcode,
                )
                processes[index] = start()
    finally:
        for process, _ in processes:
            if process.exitcode is None and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_WAIT
        for process, _ in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        holder.close()
    return ExitCode.OK
