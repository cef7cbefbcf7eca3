"""What one client connection may hold: a deadline for its headers, and caps on how many.

uvicorn closes a keep-alive connection only after ``KEEP_ALIVE_TIMEOUT`` of
silence, and every byte restarts that wait, so a client that sends a header
line every few seconds (slowloris), or connects and says nothing, kept its
connection, and its file descriptor, for ever: a thousand of them took a
service behind a 1,024-descriptor limit down. Here a connection must finish
each request's headers within ``HEADER_TIMEOUT`` of connecting or of its
previous response, and the server holds at most ``MAX_CONNECTIONS``
connections, ``MAX_CLIENT_CONNECTIONS`` of them from one address; one over
either cap is answered 503 in the OpenAI envelope and closed at once.
``raise_fd_limit`` lifts the soft descriptor limit to the hard one at start.

A response's head goes out with its body (:class:`HeadWithBody`): one
write and one TCP segment for an answer sent whole, not two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from chat2api.settings import Settings

__all__ = ["ConnectionGuard", "HeadWithBody", "raise_fd_limit", "server_options"]

log = logging.getLogger(__name__)

FD_RESERVE = 256  # descriptors kept for the store, logs, upstream connections' peaks


class HeadWithBody:
    """The transport uvicorn answers one request through: its first write waits for the next.

    uvicorn writes the status line and headers as soon as the app sends
    ``http.response.start``, and the body at ``http.response.body``: two
    system calls and two segments for a response sent whole. Here the first
    write is held until the next write, ``close`` or ``abort`` of the same
    loop step, or the step's end, whichever comes first: the same bytes in
    the same order, a step later at most.
    """

    __slots__ = ("_fresh", "_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._fresh = True
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._fresh:
            self._fresh = False
            self._held = bytes(data)
            self._loop.call_soon(self._release)
            return
        held = self._held
        if held is not None:
            self._held = None
            data = held + data
        self._transport.write(data)

    def release(self) -> None:
        """Write the held head now (the transport is about to close)."""
        self._release()

    def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            # Written even if closing since: uvicorn wrote it before that. Once
            # the connection is lost uvloop refuses writes (asyncio drops them).
            with contextlib.suppress(RuntimeError):
                self._transport.write(held)

    def close(self) -> None:
        self._release()
        self._transport.close()

    def abort(self) -> None:
        self._release()
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _refusal() -> bytes:
    body = orjson.dumps(
        {
            "error": {
                "message": "Too many open connections; try again shortly.",
                "type": "server_error",
                "param": None,
                "code": "too_many_connections",
            }
        }
    )
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Retry-After: 1\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_REFUSAL = _refusal()


class ConnectionGuard:
    """Counts open connections, in all and per client address (0: no cap)."""

    def __init__(self, *, max_connections: int, per_client: int, header_timeout: float) -> None:
        self.max_connections = max_connections
        self.per_client = per_client
        self.header_timeout = header_timeout
        self.open = 0
        self.by_client: dict[str, int] = {}
        self.refused = 0

    def admit(self, client: str) -> bool:
        """Count one more connection from ``client``, unless a cap is reached."""
        held = self.by_client.get(client, 0)
        if (self.max_connections and self.open >= self.max_connections) or (
            self.per_client and held >= self.per_client
        ):
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning(
                    "refused a connection from %s: %d open, %d from it (%d refused so far)",
                    client,
                    self.open,
                    held,
                    self.refused,
                )
            return False
        self.open += 1
        self.by_client[client] = held + 1
        return True

    def leave(self, client: str) -> None:
        """One connection of ``client`` closed."""
        self.open -= 1
        left = self.by_client.get(client, 0) - 1
        if left > 0:
            self.by_client[client] = left
        else:
            self.by_client.pop(client, None)

    def protocol(self) -> type[HttpToolsProtocol]:
        """uvicorn's httptools protocol, with this guard's caps and header deadline."""
        guard = self

        class GuardedProtocol(HttpToolsProtocol):
            _peer: str | None = None
            _header_timer: asyncio.TimerHandle | None = None

            def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
                super().connection_made(transport)
                peer = self.client[0] if self.client else ""
                if not guard.admit(peer):
                    transport.write(_REFUSAL)
                    transport.close()
                    return
                self._peer = peer
                self._arm()

            def _arm(self) -> None:
                self._disarm()
                self._header_timer = self.loop.call_later(guard.header_timeout, self._too_slow)

            def _disarm(self) -> None:
                if self._header_timer is not None:
                    self._header_timer.cancel()
                    self._header_timer = None

            def _too_slow(self) -> None:
                self._header_timer = None
                # Only between requests: a request in progress is the app's to time.
                if (self.cycle is None or self.cycle.response_complete) and not (
                    self.transport.is_closing()
                ):
                    log.debug(
                        "closed a connection from %s: no request within the header timeout",
                        self._peer,
                    )
                    self.transport.close()

            def on_headers_complete(self) -> None:
                self._disarm()
                super().on_headers_complete()
                cycle = self.cycle
                if cycle is not None and cycle.transport is self.transport:
                    cycle.transport = HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]

            def eof_received(self) -> None:
                # The transport closes itself after this (uvicorn keeps no
                # half-open connection) and writes nothing more: a head held
                # for the step's end goes now, as uvicorn had already sent it.
                cycle = self.cycle
                if cycle is not None and isinstance(cycle.transport, HeadWithBody):
                    cycle.transport.release()
                super().eof_received()

            def on_response_complete(self) -> None:
                super().on_response_complete()
                if not self.transport.is_closing():
                    self._arm()

            def connection_lost(self, exc: Exception | None) -> None:
                self._disarm()
                if self._peer is not None:
                    guard.leave(self._peer)
                    self._peer = None
                super().connection_lost(exc)

        return GuardedProtocol


def raise_fd_limit() -> int:
    """Lift the soft limit on open files to the hard one where allowed; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, hard, exc)
            return soft
        log.info("open-file limit raised from %d to %d", soft, hard)
        return hard
    return soft


def server_options(settings: Settings, fd_limit: int | None = None) -> dict[str, Any]:
    """uvicorn.Config options for ``settings``: the guarded protocol and keep-alive timeout.

    ``MAX_CONNECTIONS`` is lowered to what ``fd_limit`` descriptors allow
    (a client connection and its upstream one each take one), with a line
    in the log.
    """
    cap = settings.max_connections
    if fd_limit is not None and cap:
        allowed = max(64, (fd_limit - FD_RESERVE) // 2)
        if cap > allowed:
            log.warning(
                "MAX_CONNECTIONS %d lowered to %d: the open-file limit is %d",
                cap,
                allowed,
                fd_limit,
            )
            cap = allowed
    guard = ConnectionGuard(
        max_connections=cap,
        per_client=settings.max_client_connections,
        header_timeout=settings.header_timeout,
    )
    return {"http": guard.protocol(), "timeout_keep_alive": settings.keep_alive_timeout}
