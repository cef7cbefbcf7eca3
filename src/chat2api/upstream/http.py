"""Pooled HTTP sessions to the ChatGPT backend, and the transport error map.

One ``curl_cffi`` ``AsyncSession`` per (base URL, proxy) pair, created on
first use and reused by every request until the app shuts down: browser TLS
impersonation is what lets a real deployment pass the upstream's edge, and a
session per request would redo TLS and lose connection reuse.

Over plain ``http://`` the sessions speak HTTP/1.1 (``V2TLS``): with the
default HTTP/2 setting curl sends an ``Upgrade: h2c`` request, which some
servers answer by dropping the body. HTTPS upstreams still get HTTP/2.

Every foreign transport exception is translated in ``map_transport_errors``,
and nowhere else, into the ``chat2api.errors`` tree.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from curl_cffi.const import CurlHttpVersion
from curl_cffi.requests import AsyncSession, Response
from curl_cffi.requests import exceptions as curl_errors

from chat2api.errors import UpstreamConnectError, UpstreamTimeout, UpstreamUnavailable

log = logging.getLogger(__name__)


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
    ) -> None:
        self._impersonate = impersonate
        self._max_clients = max_clients
        self._sessions: dict[tuple[str, str | None], AsyncSession[Response]] = {}
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
            }
            if proxy:
                kwargs["proxy"] = proxy
            session = AsyncSession(**kwargs)
            self._sessions[key] = session
        return session

    @property
    def size(self) -> int:
        """How many sessions exist (one per base URL and proxy used so far)."""
        return len(self._sessions)

    async def aclose(self) -> None:
        """Close every session."""
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()


async def open_stream(
    session: AsyncSession[Response],
    url: str,
    *,
    data: bytes,
    headers: dict[str, str],
    idle_timeout: float,
) -> Response:
    """POST and return once the response headers arrived, within ``idle_timeout`` seconds.

    curl's own low-speed limit (set from the same value) then bounds silence
    inside the body; it does not reliably cover the wait for the headers, so
    that wait is bounded here. A transfer abandoned at this point ends when
    the upstream answers or falls silent; its bytes are never read.
    """
    with map_transport_errors("starting the conversation"):
        try:
            return await asyncio.wait_for(
                session.post(url, data=data, headers=headers, timeout=idle_timeout, stream=True),
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
