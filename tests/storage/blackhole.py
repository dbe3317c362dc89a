"""A TCP proxy that can turn into a black hole, for database servers that stop answering.

:class:`BlackHoleProxy` forwards every connection it accepts to a real server.
:meth:`~BlackHoleProxy.black_hole` stops it forwarding bytes in either direction
while it keeps every connection open and goes on accepting new ones: to a client,
the server has stopped answering, the way a stalled network or a frozen server
looks (not a refused connection, which fails at once). What was sent meanwhile
waits in the sockets; :meth:`~BlackHoleProxy.forward` delivers it and forwards
again.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from types import TracebackType

import sqlalchemy as sa

__all__ = ["BlackHoleProxy"]

_CHUNK = 65536
_TICK = 0.02  # seconds between looks at the switch while black-holed


class BlackHoleProxy:
    """Forward TCP connections from a local port to ``host:port`` until told not to.

    :param host: the real server's host.
    :param port: the real server's port.
    """

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        #: The local port that clients connect to.
        self.port: int = self._listener.getsockname()[1]
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._stopping = threading.Event()
        self._peers: dict[socket.socket, socket.socket] = {}
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._pump, name="black-hole proxy", daemon=True)
        self._thread.start()

    @classmethod
    def to(cls, url: str) -> BlackHoleProxy:
        """Start a proxy to the server of the SQLAlchemy ``url``."""
        parsed = sa.make_url(url)
        default_port = 5432 if parsed.get_backend_name() == "postgresql" else 3306
        return cls(parsed.host or "127.0.0.1", parsed.port or default_port)

    def url(self, url: str) -> str:
        """Return ``url`` with its server replaced by this proxy."""
        proxied = sa.make_url(url).set(host="127.0.0.1", port=self.port)
        return proxied.render_as_string(hide_password=False)

    def __repr__(self) -> str:
        state = "forwarding" if self._forwarding.is_set() else "black hole"
        return f"<BlackHoleProxy :{self.port} -> {self.upstream[0]}:{self.upstream[1]} ({state})>"

    def black_hole(self) -> None:
        """Stop forwarding bytes, in both directions, keeping the connections open."""
        self._forwarding.clear()

    def forward(self) -> None:
        """Forward bytes again, first those that waited."""
        self._forwarding.set()

    @property
    def connections(self) -> int:
        """How many client connections are open through the proxy."""
        return len(self._peers) // 2

    def close(self) -> None:
        """Stop the proxy and close every connection."""
        self._stopping.set()
        self._forwarding.set()
        self._thread.join(timeout=5)
        for sock in [self._listener, *self._peers]:
            sock.close()
        self._selector.close()

    def __enter__(self) -> BlackHoleProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the pump thread --------------------------------------------------------------

    def _pump(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(timeout=_TICK):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    self._accept()
                elif self._forwarding.is_set():
                    self._relay(sock)
            if not self._forwarding.is_set():
                # Nothing is read: the bytes stay in the sockets until forward().
                self._stopping.wait(_TICK)

    def _accept(self) -> None:
        with contextlib.suppress(BlockingIOError):
            client, _ = self._listener.accept()
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                return
            for sock, peer in ((client, server), (server, client)):
                sock.setblocking(True)
                self._peers[sock] = peer
                self._selector.register(sock, selectors.EVENT_READ)

    def _relay(self, sock: socket.socket) -> None:
        peer = self._peers.get(sock)
        if peer is None:
            return
        try:
            data = sock.recv(_CHUNK)
            if data:
                peer.sendall(data)
                return
        except OSError:
            pass
        self._drop(sock, peer)  # one side closed: close the other

    def _drop(self, *socks: socket.socket) -> None:
        for sock in socks:
            self._peers.pop(sock, None)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            sock.close()
