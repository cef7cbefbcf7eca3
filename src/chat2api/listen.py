"""Listening sockets that take a burst of new connections at once.

libuv (under uvloop) accepts one connection per turn of the event loop for
each listener. A server busy with a thousand open streams takes tens of
milliseconds a turn, so a burst of new clients waits in the kernel's accept
queue (docs/design.md, "Servers accept a burst at once"). ``acceptors``
duplicates one listening socket so that each duplicate is its own listener
on the same queue: that many accepts a turn. The kernel still hands each
connection to exactly one of them.

Both ``chat2api serve`` and the simulator listen through these.
"""

from __future__ import annotations

import socket

__all__ = ["ACCEPTORS", "BACKLOG", "acceptors", "listening_socket"]

ACCEPTORS = 16  # listeners sharing one listening socket
BACKLOG = 4096  # the kernel caps it at net.core.somaxconn


def listening_socket(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: an ephemeral port) and listening.

    ``host`` may be an IPv6 address (it contains a colon). Raises ``OSError``
    when the address cannot be bound (in use, not local, no permission).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then,
    # and without it every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def acceptors(sock: socket.socket, count: int = ACCEPTORS) -> list[socket.socket]:
    """``sock`` and ``count - 1`` duplicates of it: ``count`` listeners on one queue."""
    return [sock, *(sock.dup() for _ in range(count - 1))]
