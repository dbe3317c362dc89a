"""Hand out only live pooled connections, without a round trip for each.

SQLAlchemy's ``pool_pre_ping`` sends a statement to the server every time a
connection leaves the pool: on a worker that is three of its round trips
for every token. :func:`check_on_checkout` does the same job for less. A
server that ends a session (a restart, ``pg_terminate_backend``, ``KILL``)
closes its socket, and the closed socket reads as ready on our side. So a
connection whose socket has nothing to read, and that sat in the pool for
less than :data:`IDLE_PING`, is handed out as it is. Any other connection
is pinged as ``pool_pre_ping`` would, and replaced when the ping fails.
Drivers that give no socket (SQLite; PyMySQL) are pinged every time, as
before.
"""

from __future__ import annotations

import select
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

__all__ = ["IDLE_PING", "check_on_checkout"]

#: Seconds a connection may sit in the pool and still be handed out unpinged
#: when its socket is quiet (a half-open connection shows nothing on its socket).
IDLE_PING = 30.0

_RETURNED = "workflow_returned_at"


def check_on_checkout(engine: Engine) -> None:
    """Check every connection ``engine``'s pool hands out; replace the dead ones."""
    dialect = engine.dialect

    def returned(dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned_at = record.info.pop(_RETURNED, None)
        if returned_at is None:  # a new connection: it was just opened
            return
        if time.monotonic() - returned_at < IDLE_PING and _quiet(dbapi_connection):
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"a pooled connection is dead: {exc}") from exc
        if alive is False:
            raise DisconnectionError("a pooled connection did not answer a ping")

    event.listen(engine, "checkin", returned)
    event.listen(engine, "checkout", checked_out)


def _quiet(dbapi_connection: Any) -> bool:
    """Whether the connection's socket has nothing to read (``False``: no socket to look at)."""
    fileno = getattr(dbapi_connection, "fileno", None)
    if fileno is None:
        return False
    try:
        poller = select.poll()
        poller.register(fileno(), select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
    except (AttributeError, OSError, ValueError, TypeError):
        return False
