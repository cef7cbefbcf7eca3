"""Listening sockets that take a burst of new connections at once.

libuv (under uvloop) accepts one connection per turn of the event loop for
each listener. A server busy with a thousand open streams takes tens of
milliseconds a turn, so a burst of new clients waited in the kernel's accept
queue: ``ss -ltn`` showed up to 342 connections pending on ``chat2api serve``
during ``bench/streams.py``, and 270 for seconds on the simulator, before
both listened this way. ``acceptors`` duplicates one listening socket so that
each duplicate is its own listener on the same queue: that many accepts a
turn. The kernel still hands each connection to exactly one of them.

Both ``chat2api serve`` and the simulator listen through these.
"""

from __future__ import annotations

import socket

__all__ = ["ACCEPTORS", "BACKLOG", "acceptors", "listening_socket", "reuse_port_sockets"]

ACCEPTORS = 16  # listeners sharing one listening socket
BACKLOG = 4096  # the kernel caps it at net.core.somaxconn


def listening_socket(
    host: str, port: int, backlog: int = BACKLOG, *, reuse_port: bool = False
) -> socket.socket:
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
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def acceptors(sock: socket.socket, count: int = ACCEPTORS) -> list[socket.socket]:
    """``sock`` and ``count - 1`` duplicates of it: ``count`` listeners on one queue."""
    return [sock, *(sock.dup() for _ in range(count - 1))]


def reuse_port_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on one port, each with its own accept queue.

    For ``serve --workers``: with one shared queue, the worker whose loop
    happened to be free took most of a burst (1,000 streams on 2 workers:
    TTFB p99 2.3x its p50); the kernel spreads connections over
    ``SO_REUSEPORT`` sockets by their addresses instead. Without
    ``SO_REUSEPORT`` (not Linux or BSD), one socket is returned, to share.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        return [listening_socket(host, port)]
    # A plain bind first: it fails if anything holds the port, even another
    # server's SO_REUSEPORT socket, which would otherwise share our traffic.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        bound = probe.getsockname()[1]  # port 0: the one it got
    sockets: list[socket.socket] = []
    try:
        sockets += [listening_socket(host, bound, reuse_port=True) for _ in range(count)]
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets
