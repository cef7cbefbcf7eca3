"""Pooled HTTP sessions to the ChatGPT backend, and the transport error map.

One :class:`chat2api.upstream.transport.Session` per (base URL, proxy)
pair, created on first use and reused by every request until the app shuts
down: browser TLS impersonation is what lets a real deployment pass the
upstream's edge, and a session per request would redo TLS and lose
connection reuse.

Over plain ``http://`` the sessions speak HTTP/1.1 (``V2TLS``): with the
default HTTP/2 setting curl sends an ``Upgrade: h2c`` request, which some
servers answer by dropping the body. HTTPS upstreams still get HTTP/2.

Connections: during a burst, a connection whose request ended stays open
for the next one, so that a conversation goes out on the connection its
chat-requirements call just used instead of waiting for a new one (over
HTTP/1.1 a thousand streams need a thousand connections; over HTTP/2 one
carries many). Once no transfer runs, a session that needed more than
``max_idle_connections`` (64) at once closes them all: a thousand idle
sockets, each with its buffers, cost more than reconnecting later. That
may come after the reclaim below (which runs with a few transfers still
going), so each such close calls for another.

Memory: a burst of N concurrent requests leaves N idle handles in the
session. So ``trim_idle`` (run every few seconds while sessions exist)
closes idle handles beyond ``max_idle_handles`` (16: each pins heap pages
among the burst's freed memory, and a new one is cheap to make; docs/design.md,
"Memory goes back after a burst"), then tells :class:`chat2api.heap.Reclaim`
what it closed and how busy the sessions are: that decides when the freed
memory goes back to the system.

Every foreign transport exception is translated in ``map_transport_errors``,
and nowhere else, into the ``chat2api.errors`` tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

import orjson
from curl_cffi import CurlError
from curl_cffi.const import CurlECode

from chat2api.errors import UpstreamConnectError, UpstreamTimeout, UpstreamUnavailable
from chat2api.heap import Reclaim
from chat2api.upstream.transport import Reply, Session, TransferAborted

log = logging.getLogger(__name__)

TRIM_INTERVAL = 2.0


_CONNECT_CODES = frozenset(
    {
        CurlECode.COULDNT_RESOLVE_PROXY,
        CurlECode.COULDNT_RESOLVE_HOST,
        CurlECode.COULDNT_CONNECT,
        CurlECode.SSL_CONNECT_ERROR,
        CurlECode.PEER_FAILED_VERIFICATION,
        CurlECode.SSL_CERTPROBLEM,
        CurlECode.SSL_CIPHER,
        CurlECode.SSL_CACERT_BADFILE,
        CurlECode.PROXY,
    }
)


class map_transport_errors:
    """Re-raise libcurl transport failures as chat2api upstream errors.

    A class, not a ``@contextmanager`` generator: it is held across every
    upstream call a request awaits, and a generator with its frame costs
    ten times the memory of this object.
    """

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not isinstance(exc, CurlError):
            return
        what = self.what
        if exc.code == CurlECode.OPERATION_TIMEDOUT and isinstance(exc, TransferAborted):
            message = f"The upstream sent no response headers in time ({what})."
            raise UpstreamTimeout(message) from exc
        if exc.code == CurlECode.OPERATION_TIMEDOUT:
            raise UpstreamTimeout(f"The upstream did not answer in time ({what}).") from exc
        if exc.code in _CONNECT_CODES:
            raise UpstreamConnectError(f"Could not connect to the upstream ({what}).") from exc
        raise UpstreamUnavailable(f"The upstream connection failed ({what}).") from exc


def sticky_choice(options: Sequence[str], key: str, what: str) -> str:
    """One of ``options`` for the account ``key``: always the same one for that ``what``."""
    digest = hashlib.sha256(f"chat2api-{what}:{key}".encode()).hexdigest()
    return options[int(digest[:8], 16) % len(options)]


def sticky_proxy(proxies: Sequence[str], key: str) -> str:
    """The proxy of the account ``key``: always the same one of ``proxies``.

    ``{}`` in it becomes the account's own session id (16 hex), for rotating
    proxy providers that pin an exit address to a session name.
    """
    digest = hashlib.sha256(("chat2api-proxy:" + key).encode()).hexdigest()
    proxy = proxies[int(digest[:8], 16) % len(proxies)]
    return proxy.replace("{}", digest[8:24])


class SessionPool:
    """Reusable sessions keyed by (base URL, proxy)."""

    def __init__(
        self,
        *,
        impersonate: str = "chrome",
        max_clients: int = 1024,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        max_idle_connections: int = 64,
        max_idle_handles: int = 16,
    ) -> None:
        self._impersonate = impersonate
        self._max_clients = max_clients
        self.max_idle_connections = max_idle_connections
        self.max_idle_handles = max_idle_handles
        self._sessions: dict[tuple[str, str | None, str | None], Session] = {}
        self._trimmer: asyncio.Task[None] | None = None
        self._reclaim = Reclaim()
        # Plain requests: (connect, read) is a total deadline of their sum.
        self.timeout = (connect_timeout, read_timeout)
        # Streams: curl aborts after this many seconds without a byte (headers
        # included), however long the whole answer takes.
        self.stream_timeout = read_timeout

    def session(self, base_url: str, proxy: str | None, impersonate: str | None = None) -> Session:
        """The shared session for this upstream, proxy and browser (default: IMPERSONATE's)."""
        key = (base_url, proxy, impersonate)
        session = self._sessions.get(key)
        if session is None:
            session = Session(
                impersonate=impersonate or self._impersonate,
                proxy=proxy,
                max_connections=self._max_clients,
                max_idle_connections=self.max_idle_connections,
            )
            self._sessions[key] = session
            if self._trimmer is None:
                self._trimmer = asyncio.create_task(self._trim_forever())
        return session

    def trim_idle(self) -> int:
        """Close idle handles beyond ``max_idle_handles`` per session; how many.

        Then :class:`chat2api.heap.Reclaim` hands freed memory back to the
        system if the sessions are quiet enough.
        """
        sessions = self._sessions.values()
        closed = sum(session.trim(self.max_idle_handles) for session in sessions)
        self._reclaim.after_trim(
            closed=closed,
            sheds=sum(session.sheds for session in sessions),
            active=sum(session.active for session in sessions),
        )
        return closed

    async def _trim_forever(self) -> None:
        while True:
            await asyncio.sleep(TRIM_INTERVAL)
            closed = self.trim_idle()
            if closed:
                log.debug("closed %d idle curl handles", closed)

    @property
    def size(self) -> int:
        """How many sessions exist (one per base URL and proxy used so far)."""
        return len(self._sessions)

    async def aclose(self) -> None:
        """Close every session."""
        if self._trimmer is not None:
            self._trimmer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._trimmer
            self._trimmer = None
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.aclose()


def json_body(value: Any) -> bytes:
    """``value`` as a JSON request body: bytes of their exact size.

    ``orjson.dumps`` hands back its whole working buffer (4 KiB more than the
    JSON, at the least), and a request body lives until the upstream answers:
    with a thousand requests in flight, megabytes held for nothing. The copy
    costs about a microsecond per KiB.
    """
    return memoryview(orjson.dumps(value)).tobytes()


async def open_stream(
    session: Session,
    url: str,
    *,
    data: bytes | None,
    headers: Mapping[str, str],
    idle_timeout: float,
    method: Literal["GET", "POST"] = "POST",
) -> Reply:
    """Send and return once the response headers arrived, within ``idle_timeout`` seconds.

    curl's low-speed limit (set from the same value) then bounds silence
    inside the body; the wait for the headers is bounded by the session.
    """
    with map_transport_errors("starting the conversation" if method == "POST" else "a download"):
        return await session.request(
            method,
            url,
            data=data,
            headers=headers,
            timeout=idle_timeout,
            stream=True,
            follow_redirects=method == "GET",
        )


async def iter_body(response: Reply) -> AsyncGenerator[bytes, None]:
    """Yield a streamed body; closing the iterator early aborts the transfer upstream."""
    try:
        with map_transport_errors("reading the stream"):
            async for chunk in response.aiter_bytes():
                yield chunk
    finally:
        await response.aclose()  # a no-op once the transfer ended
