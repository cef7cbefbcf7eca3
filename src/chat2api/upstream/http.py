"""Pooled HTTP sessions to the ChatGPT backend, and the transport error map.

One ``curl_cffi`` ``AsyncSession`` per (base URL, proxy) pair, created on
first use and reused by every request until the app shuts down: browser TLS
impersonation is what lets a real deployment pass the upstream's edge, and a
session per request would redo TLS and lose connection reuse.

Over plain ``http://`` the sessions speak HTTP/1.1 (``V2TLS``): with the
default HTTP/2 setting curl sends an ``Upgrade: h2c`` request, which some
servers answer by dropping the body. HTTPS upstreams still get HTTP/2.

Memory: a burst of N concurrent requests leaves N idle ``Curl`` handles in
the session's pool and, by curl's default, up to 4N connections in its
cache, none of which is ever given back. So the connection cache is capped
(``max_idle_connections``), handles are given smaller buffers (the upload
buffer is 64 KiB by default, for request bodies of a few KiB), and
``trim_idle`` (run every few seconds while sessions exist) closes idle
handles beyond ``max_idle_handles``, then runs a full garbage collection
(a burst leaves its finished transfers in reference cycles) and
``malloc_trim``.

Every foreign transport exception is translated in ``map_transport_errors``,
and nowhere else, into the ``chat2api.errors`` tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from curl_cffi import ffi as curl_ffi
from curl_cffi import lib as curl_lib
from curl_cffi.const import CurlHttpVersion, CurlMOpt, CurlOpt
from curl_cffi.requests import AsyncSession, Response
from curl_cffi.requests import exceptions as curl_errors

from chat2api.errors import UpstreamConnectError, UpstreamTimeout, UpstreamUnavailable

log = logging.getLogger(__name__)

# Per-handle buffers: curl's minimum upload buffer (default 64 KiB) and its
# default download buffer, named so that a change of default cannot grow them.
_CURL_OPTIONS: dict[CurlOpt, Any] = {CurlOpt.UPLOAD_BUFFERSIZE: 16384, CurlOpt.BUFFERSIZE: 16384}
TRIM_INTERVAL = 2.0


def _malloc_trim() -> Any:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc
        return None


_MALLOC_TRIM = _malloc_trim()


def _set_max_connects(session: AsyncSession[Response], limit: int) -> None:
    """Cap the connections curl keeps open when idle (``CURLMOPT_MAXCONNECTS``).

    Not through ``AsyncCurl.setopt``: curl_cffi 0.17 passes this long option
    as a pointer, so curl reads an address as the limit (no cap at all).
    """
    code = curl_lib.curl_multi_setopt(
        session.acurl._curlm, CurlMOpt.MAXCONNECTS, curl_ffi.cast("void *", limit)
    )
    if code != 0:
        log.warning("curl refused CURLMOPT_MAXCONNECTS=%d (code %d)", limit, code)


@contextmanager
def map_transport_errors(what: str) -> Iterator[None]:
    """Re-raise curl_cffi transport failures as chat2api upstream errors."""
    try:
        yield
    except curl_errors.Timeout as exc:
        raise UpstreamTimeout(f"The upstream did not answer in time ({what}).") from exc
    except (
        curl_errors.ConnectionError,
        curl_errors.DNSError,
        curl_errors.ProxyError,
        curl_errors.SSLError,
    ) as exc:
        raise UpstreamConnectError(f"Could not connect to the upstream ({what}).") from exc
    except curl_errors.RequestException as exc:
        raise UpstreamUnavailable(f"The upstream connection failed ({what}).") from exc


class SessionPool:
    """Reusable sessions keyed by (base URL, proxy)."""

    def __init__(
        self,
        *,
        impersonate: str = "chrome",
        max_clients: int = 1024,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        max_idle_connections: int = 1024,
        max_idle_handles: int = 64,
    ) -> None:
        self._impersonate = impersonate
        self._max_clients = max_clients
        self.max_idle_connections = max_idle_connections
        self.max_idle_handles = max_idle_handles
        self._sessions: dict[tuple[str, str | None], AsyncSession[Response]] = {}
        self._trimmer: asyncio.Task[None] | None = None
        # Plain requests: (connect, read) is a total deadline of their sum.
        self.timeout = (connect_timeout, read_timeout)
        # Streams: curl aborts after this many seconds without a byte (headers
        # included), however long the whole answer takes.
        self.stream_timeout = read_timeout

    def session(self, base_url: str, proxy: str | None) -> AsyncSession[Response]:
        """The shared session for this upstream and proxy."""
        key = (base_url, proxy)
        session = self._sessions.get(key)
        if session is None:
            kwargs: dict[str, Any] = {
                "impersonate": self._impersonate,
                "http_version": CurlHttpVersion.V2TLS,
                "max_clients": self._max_clients,
                "curl_options": _CURL_OPTIONS,
            }
            if proxy:
                kwargs["proxy"] = proxy
            session = AsyncSession(**kwargs)
            # curl keeps up to 4x the handles ever added in its connection cache.
            _set_max_connects(session, self.max_idle_connections)
            self._sessions[key] = session
            if self._trimmer is None:
                self._trimmer = asyncio.create_task(self._trim_forever())
        return session

    def trim_idle(self) -> int:
        """Close idle ``Curl`` handles beyond ``max_idle_handles`` per session; how many."""
        closed = 0
        for session in self._sessions.values():
            pool = session.pool
            items = [pool.get_nowait() for _ in range(pool.qsize())]  # newest first
            kept = 0
            for i, curl in enumerate(items):
                if curl is None:
                    continue
                if kept < self.max_idle_handles:
                    kept += 1
                    continue
                curl.close()
                items[i] = None  # the pool makes a new handle when it gets to it
                closed += 1
            for item in reversed(items):  # back in the same order
                pool.put_nowait(item)
        if closed:
            # A burst's responses, queues and request bodies sit in reference
            # cycles (curl_cffi's stream task and its closures) that only a
            # full collection frees; the young generations never reach them.
            gc.collect()
            if _MALLOC_TRIM is not None:
                _MALLOC_TRIM(0)  # give the freed heap back to the system, not just to malloc
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
            await session.close()


async def open_stream(
    session: AsyncSession[Response],
    url: str,
    *,
    data: bytes | None,
    headers: dict[str, str],
    idle_timeout: float,
    method: Literal["GET", "POST"] = "POST",
) -> Response:
    """Send and return once the response headers arrived, within ``idle_timeout`` seconds.

    curl's own low-speed limit (set from the same value) then bounds silence
    inside the body; it does not reliably cover the wait for the headers, so
    that wait is bounded here. A transfer abandoned at this point ends when
    the upstream answers or falls silent; its bytes are never read.
    """
    with map_transport_errors("starting the conversation" if method == "POST" else "a download"):
        try:
            return await asyncio.wait_for(
                session.request(
                    method, url, data=data, headers=headers, timeout=idle_timeout, stream=True
                ),
                timeout=idle_timeout,
            )
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"The upstream sent no response headers within {idle_timeout:g}s."
            ) from exc


async def iter_body(response: Response) -> AsyncIterator[bytes]:
    """Yield a streamed body; closing the iterator aborts the transfer upstream."""
    finished = False
    try:
        with map_transport_errors("reading the stream"):
            async for chunk in response.aiter_content():  # type: ignore[no-untyped-call]
                yield chunk
        finished = True
    finally:
        if not finished:
            await abort(response)


async def abort(response: Response) -> None:
    """Stop a streamed transfer: curl drops the connection at its next write."""
    quit_now = getattr(response, "quit_now", None)
    if quit_now is not None:
        quit_now.set()
    task = getattr(response, "astream_task", None)
    if task is not None and not task.done():
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=5)
        except (TimeoutError, curl_errors.RequestException):
            task.cancel()
