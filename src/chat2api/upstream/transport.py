"""A lean asyncio HTTP client on curl_cffi's libcurl bindings (``Curl``, a multi handle of its own).

curl_cffi's ``AsyncSession`` resets each handle and sets every option again
(impersonation included) for every request, parses headers and cookies in
Python, and runs a task, a queue and three events per streamed response: a
third of chat2api's CPU per completion, and a good part of each open
stream's memory. This module keeps what matters (curl-impersonate's browser
TLS/HTTP fingerprint, one libcurl multi handle per session and its
connection cache, driven by :class:`chat2api.upstream.multi.Multi`) and does
the rest once:

* a handle is impersonated and configured when it is created and is reused
  as is (libcurl keeps options across transfers); a request sets only what
  changes (URL, method, body, headers, timeouts);
* the body and header callbacks are bound once per handle and write into the
  current :class:`Reply`; a streamed body is a list of chunks and one future
  to wake the reader;
* no cookie engine: upstream cookies are never carried from one account's
  request to another's; callers send the cookies they mean to send;
* no default headers of the impersonated browser: they are those of a
  page navigation (``Sec-Fetch-Mode: navigate``, ``Upgrade-Insecure-Requests``),
  wrong for the web app's own ``fetch()`` calls, and with them libcurl keeps a
  merged copy of every request header line (bearer token included) for as
  long as the transfer runs (docs/design.md). Callers send the
  browser's headers for the kind of request they make
  (:mod:`chat2api.upstream.browser`); the transport asks for the encodings
  a browser accepts and decodes the body (``ACCEPT_ENCODING``).

A :class:`Reply` is returned once the final response headers arrived (1xx
and proxy CONNECT answers are skipped); its body is then read with
:meth:`Reply.aread` or :meth:`Reply.aiter_bytes`, and :meth:`Reply.aclose`
aborts a transfer still running. Transport failures raise curl_cffi's
``CurlError`` (``code`` is the libcurl error); ``chat2api.upstream.http``
maps them into the chat2api error tree.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping
from typing import Any

from curl_cffi import Curl, CurlError, CurlHttpVersion, CurlInfo, CurlOpt
from curl_cffi.const import CurlECode

from chat2api.upstream import curl
from chat2api.upstream.multi import Multi

__all__ = ["ACCEPT_ENCODING", "Reply", "ReplyHeaders", "Session", "TransferAborted"]

ACCEPT_ENCODING = "gzip, deflate, br, zstd"
"""Sent as ``Accept-Encoding`` (Chrome's list); libcurl decodes each of them."""

# Per-handle buffers: curl's minimum upload buffer (default 64 KiB) and its
# default download buffer, named so that a change of default cannot grow them.
_HANDLE_OPTIONS: dict[CurlOpt, Any] = {
    CurlOpt.UPLOAD_BUFFERSIZE: 16384,
    CurlOpt.BUFFERSIZE: 16384,
    CurlOpt.HTTP_VERSION: CurlHttpVersion.V2TLS,  # plain http stays HTTP/1.1, no h2c upgrade
    CurlOpt.MAXREDIRS: 10,
    CurlOpt.SUPPRESS_CONNECT_HEADERS: 1,  # a proxy's CONNECT answer is not the response
    CurlOpt.NOSIGNAL: 1,
    CurlOpt.ACCEPT_ENCODING: ACCEPT_ENCODING,
}
_NULL = curl.NULL
_unpack = curl.unpack


class TransferAborted(CurlError):
    """The transfer was stopped by :meth:`Reply.aclose` or a header deadline."""


class ReplyHeaders:
    """Response headers in arrival order; lookups ignore the case of names."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        name = name.lower()
        for key, value in self._items:
            if key.lower() == name:
                return value
        return default

    def get_list(self, name: str) -> list[str]:
        """Every value of ``name``, in order (``Set-Cookie`` may repeat)."""
        name = name.lower()
        return [value for key, value in self._items if key.lower() == name]

    def multi_items(self) -> list[tuple[str, str]]:
        """Every (name, value) pair, repeats included, names as sent."""
        return list(self._items)

    def lower(self) -> dict[str, str]:
        """Lower-case names to their first value."""
        out: dict[str, str] = {}
        for key, value in self._items:
            out.setdefault(key.lower(), value)
        return out

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __repr__(self) -> str:
        return f"ReplyHeaders({[k for k, _ in self._items]!r})"


class Reply:
    """One response: status and headers at once, the body read or streamed after."""

    __slots__ = (
        "_body",
        "_chunks",
        "_deadline",
        "_error",
        "_finished",
        "_follow",
        "_handle",
        "_header_lines",
        "_headers",
        "_headers_ready",
        "_session",
        "_waiter",
        "status_code",
    )

    def __init__(self, session: Session, handle: _Handle, body: bytes | None, follow: bool) -> None:
        self._session = session
        self._follow = follow
        self._handle: _Handle | None = handle
        self._body = body  # the request body: curl reads it in place until it is sent
        self._chunks: list[bytes] = []  # taken whole by the reader (a deque costs 760 B)
        self._header_lines: list[bytes] = []
        self._headers_ready: asyncio.Future[None] = session.loop.create_future()
        self._waiter: asyncio.Future[None] | None = None
        self._finished = False
        self._error: BaseException | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self.status_code = 0
        self._headers: ReplyHeaders | None = None  # parsed from _header_lines on first use

    # -- libcurl callbacks (run inside curl_multi_socket_action, on the loop)

    def _on_header(self, line: bytes) -> int:
        if self._headers_ready.done():
            return len(line)  # trailers after the body: not kept
        if line.startswith(b"HTTP/"):
            self._header_lines.clear()  # a new response (after a 1xx) starts
            parts = line.split(None, 2)
            self.status_code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        elif line in (b"\r\n", b"\n"):
            status = self.status_code
            if 100 <= status < 200:
                return len(line)  # an interim answer: the real one follows
            if self._follow and 300 <= status < 400 and self._has_location():
                return len(line)  # curl follows this redirect
            self._publish_headers()
        else:
            self._header_lines.append(line)
        return len(line)

    def _on_body(self, chunk: bytes) -> int:
        if not self._headers_ready.done():  # HTTP/0.9-style or headers without a blank line
            self._publish_headers()
        self._chunks.append(chunk)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return len(chunk)

    def _has_location(self) -> bool:
        return any(line[:9].lower() == b"location:" for line in self._header_lines)

    def _publish_headers(self) -> None:
        if self._deadline is not None:  # it bounds the wait for the headers only
            self._deadline.cancel()
            self._deadline = None
        if self._handle is not None:
            # The final answer is here, so curl builds no further request from
            # our header list (it is read when a request is written, and this
            # transfer writes none after a final answer): a long stream need
            # not keep it, nor the token lines in it.
            self._handle.free_headers()
        self._drop_sent_body()
        if len(self._header_lines) > 1:  # one bytes for a long stream, not one per line
            self._header_lines = [b"".join(self._header_lines)]
        if not self._headers_ready.done():
            self._headers_ready.set_result(None)

    def _drop_sent_body(self) -> None:
        """Free the request body once curl sent all of it (a long stream need not keep it)."""
        body, handle = self._body, self._handle
        if body is None or handle is None:
            return
        if handle.uploaded() >= len(body):
            self._body = None  # the only reference: options go to libcurl directly

    # -- completion

    def _finish(self, error: BaseException | None) -> None:
        if self._finished:
            return
        self._finished = True
        self._error = error
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        handle, self._handle = self._handle, None
        self._body = None
        if handle is not None:
            self._session._release(handle)
        if not self._headers_ready.done():
            if error is None:
                if self.status_code == 0:
                    error = CurlError("The upstream closed the connection without a response.")
                    self._error = error
                    self._headers_ready.set_exception(error)
                else:
                    self._publish_headers()
            else:
                self._headers_ready.set_exception(error)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _abort(self, error: BaseException) -> None:
        """Stop the transfer now; the handle goes back to the session."""
        if self._finished:
            return
        self._error = error
        handle = self._handle
        if handle is not None:
            self._session._remove(handle)
        self._finish(error)

    # -- public API

    @property
    def headers(self) -> ReplyHeaders:
        """The final response's headers; empty until they arrived."""
        if self._headers is None:
            if not self._headers_ready.done():
                return ReplyHeaders([])
            items: list[tuple[str, str]] = []
            for raw in b"".join(self._header_lines).splitlines():
                name, sep, value = raw.decode("latin-1").partition(":")
                if sep:
                    items.append((name.strip(), value.strip()))
                elif items and raw[:1] in (b" ", b"\t"):  # obsolete line folding
                    key, previous = items[-1]
                    items[-1] = (key, f"{previous} {raw.decode('latin-1').strip()}")
            self._header_lines = []
            self._headers = ReplyHeaders(items)
        return self._headers

    @property
    def finished(self) -> bool:
        """True once the transfer ended (read fully, failed or aborted)."""
        return self._finished

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives (chunks already waiting come joined); raises on failure."""
        return _BodyChunks(self)

    async def _next_chunk(self) -> bytes:
        chunks = self._chunks
        while not chunks:
            if self._finished:
                if self._error is not None and not isinstance(self._error, TransferAborted):
                    raise self._error
                raise StopAsyncIteration
            waiter = self._waiter = self._session.loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        return data

    async def aread(self) -> bytes:
        """The whole body."""
        parts = [chunk async for chunk in self.aiter_bytes()]
        return b"".join(parts)

    async def aclose(self) -> None:
        """Abort the transfer if it is still running (its connection is closed)."""
        self._abort(TransferAborted("The transfer was aborted.", CurlECode.ABORTED_BY_CALLBACK))
        self._chunks.clear()


class _BodyChunks:
    """:meth:`Reply.aiter_bytes`: an iterator object, not an async generator.

    An async generator left before its end (a reader that stops at the
    answer's last event) is finalized through the event loop's hook: a task
    to close it and, on uvloop, a wake-up of the loop through its eventfd,
    per request. This has nothing to close.
    """

    __slots__ = ("_reply",)

    def __init__(self, reply: Reply) -> None:
        self._reply = reply

    def __aiter__(self) -> _BodyChunks:
        return self

    def __anext__(self) -> Coroutine[Any, Any, bytes]:
        return self._reply._next_chunk()


class _Handle:
    """A configured, impersonating easy handle and the reply it currently feeds.

    A request's options go to ``curl_easy_setopt`` directly (through
    :mod:`chat2api.upstream.curl`, which says why). Options that only hold a value
    (timeouts, URL, method override) are remembered and not set again while
    unchanged: libcurl keeps options across a handle's transfers.
    """

    __slots__ = (
        "_callbacks",
        "_easy",
        "_uploaded",
        "_values",
        "curl",
        "easy",
        "failure",
        "header_slist",
        "reply",
    )

    def __init__(self, handle: Curl) -> None:
        self.curl = handle
        self._easy = self.easy = curl.easy_handle(handle)
        self.reply: Reply | None = None
        self.header_slist: Any = _NULL
        self._values: dict[CurlOpt, object] = {}
        self._uploaded = curl.offset_out()
        self.failure: BaseException | None = None  # raised in a callback: the transfer's error
        self._callbacks = curl.easy_callbacks(self._easy, self.on_body, self.on_header, self._fail)

    def _setopt(self, option: CurlOpt, param: Any) -> None:
        code = curl.easy_setopt(self._easy, option, param)
        if code:
            raise CurlError(f"curl_easy_setopt({option.name}) failed with code {code}", code)

    def set_action(self, option: CurlOpt, value: int) -> None:
        """A long option that acts when set (``HTTPGET``, ``NOBODY``), or changes every time."""
        self._setopt(option, curl.long_param(value))

    def set_long(self, option: CurlOpt, value: int) -> None:
        """A long option that holds a value."""
        if self._values.get(option) != value:
            self._setopt(option, curl.long_param(value))
            self._values[option] = value

    def set_text(self, option: CurlOpt, value: bytes | None) -> None:
        """A string option that holds a value (libcurl copies it); ``None`` unsets it."""
        if option not in self._values or self._values[option] != value:
            self._setopt(option, _NULL if value is None else value)
            self._values[option] = value

    def set_body(self, body: bytes) -> None:
        """``POSTFIELDS``: read in place, so the caller keeps ``body`` until it is sent."""
        self._setopt(CurlOpt.POSTFIELDSIZE, curl.long_param(len(body)))
        self._setopt(CurlOpt.POSTFIELDS, body)

    # libcurl's write and header callbacks (``curl.WriteCallback``)

    def on_body(self, data: Any, size: int, length: int, userdata: Any) -> int:
        reply = self.reply
        return reply._on_body(_unpack(data, length)) if reply is not None else length

    def on_header(self, data: Any, size: int, length: int, userdata: Any) -> int:
        reply = self.reply
        return reply._on_header(_unpack(data, length)) if reply is not None else length

    def _fail(self, error: BaseException) -> None:
        if self.failure is None:
            self.failure = error

    def uploaded(self) -> int:
        """Bytes of the request body sent so far."""
        curl.easy_getinfo(self._easy, CurlInfo.SIZE_UPLOAD_T, self._uploaded)
        return int(self._uploaded[0])

    def transfer_done(self, code: int) -> None:
        """The multi handle's word that the transfer ended (CURLcode ``code``)."""
        reply = self.reply
        failure, self.failure = self.failure, None
        if reply is not None:
            if code:
                reply._finish(failure or curl.transfer_error(self.curl, code))
            else:
                reply._finish(None)

    def set_headers(self, lines: list[bytes]) -> None:
        self.free_headers()
        self.header_slist = curl.header_list(lines)
        curl.easy_setopt(self._easy, CurlOpt.HTTPHEADER, self.header_slist)

    def free_headers(self) -> None:
        if self.header_slist != _NULL:
            curl.easy_setopt(self._easy, CurlOpt.HTTPHEADER, _NULL)
            curl.free_header_list(self.header_slist)
            self.header_slist = _NULL

    def close(self) -> None:
        self.free_headers()
        self.curl.close()


class Session:
    """Requests to any URL through one libcurl multi handle (connection cache and all).

    ``impersonate`` names a curl-impersonate browser target; ``proxy`` is a
    proxy URL or ``None`` (then libcurl honours the usual ``*_proxy``
    environment variables, as curl does).

    Connections: at most ``max_connections`` at once. While transfers run,
    each finished one's connection stays open for the next request; once
    none runs, the session keeps them only if the busiest moment since the
    last such point needed at most ``max_idle_connections``.
    """

    def __init__(
        self,
        *,
        impersonate: str,
        proxy: str | None = None,
        max_connections: int = 1024,
        max_idle_connections: int = 64,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        # "chrome" and the like name curl_cffi's current default of that browser.
        self._impersonate = curl.real_target(impersonate)
        self._proxy = proxy
        self._max_connections = max_connections
        self._max_idle_connections = max_idle_connections
        self._multi = self._new_multi()
        self._idle: list[_Handle] = []  # most recently used last
        self._busy = 0
        self._peak = 0  # most transfers at once since the connections were last shed
        self._shedding: asyncio.Task[None] | None = None
        self.sheds = 0  # how many times the cached connections were closed
        self._closed = False

    def _new_multi(self) -> Multi:
        # While transfers run, every connection stays cached for the next
        # request (a conversation follows its chat-requirements call at once):
        # up to max_connections, not just max_idle_connections. Once the
        # session is idle again, _shed() closes what a burst left behind.
        return Multi(self.loop, self._max_connections)

    async def _shed(self) -> None:
        """Close the cached connections, if the session is still idle.

        libcurl has no call that closes idle connections alone, so the multi
        handle that owns them is replaced; with no transfer running, none
        belongs to the old one.
        """
        try:
            if self._busy or self._closed:
                return
            old, self._multi = self._multi, self._new_multi()
            self._peak = 0
            old.close()
            self.sheds += 1
        finally:
            self._shedding = None

    # -- handles

    def _new_handle(self) -> _Handle:
        easy = Curl()
        if easy.impersonate(self._impersonate, default_headers=False):
            easy.close()
            raise ValueError(f"curl-impersonate does not know the target {self._impersonate!r}")
        handle = _Handle(easy)
        curl.use_ca_bundle(easy)
        for option, value in _HANDLE_OPTIONS.items():
            easy.setopt(option, value)
        if self._proxy:
            easy.setopt(CurlOpt.PROXY, self._proxy)
            easy.setopt(CurlOpt.NOPROXY, "")
        return handle

    def _release(self, handle: _Handle) -> None:
        handle.reply = None
        handle.failure = None
        handle.free_headers()
        self._busy -= 1
        if self._closed:
            handle.close()
            return
        self._idle.append(handle)
        if self._busy == 0 and self._peak > self._max_idle_connections and not self._shedding:
            # Not from here: this may run inside a libcurl callback.
            self._shedding = self.loop.create_task(self._shed())

    def _remove(self, handle: _Handle) -> None:
        self._multi.remove(handle.easy)

    @property
    def idle_handles(self) -> int:
        """Handles kept for reuse."""
        return len(self._idle)

    @property
    def active(self) -> int:
        """Transfers running now."""
        return self._busy

    @property
    def watching(self) -> tuple[int, bool]:
        """(sockets watched on the loop, whether a libcurl timer is scheduled)."""
        return self._multi.watching

    def trim(self, keep: int) -> int:
        """Close idle handles beyond the ``keep`` most recently used; how many."""
        surplus = len(self._idle) - keep
        if surplus <= 0:
            return 0
        closing, self._idle = self._idle[:surplus], self._idle[surplus:]
        for handle in closing:
            handle.close()
        return surplus

    # -- requests

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        data: bytes | None = None,
        timeout: float | tuple[float, float] = 30.0,  # noqa: ASYNC109 (curl's, not asyncio's)
        stream: bool = False,
        follow_redirects: bool = False,
    ) -> Reply:
        """Send; return once the final response headers arrived.

        ``timeout``: a number bounds the whole transfer; ``(connect, read)``
        bounds the connection and then the whole transfer by their sum. With
        ``stream=True`` the read part is instead the longest silence allowed
        (headers included) and the body is left to :meth:`Reply.aiter_bytes`.
        Either way the body is left to :meth:`Reply.aread` or
        :meth:`Reply.aiter_bytes` (:meth:`fetch` does both steps).
        ``follow_redirects`` lets curl follow up to 10 redirects.
        """
        if self._closed:
            raise RuntimeError("the session is closed")
        handle = self._idle.pop() if self._idle else self._new_handle()
        self._busy += 1
        self._peak = max(self._peak, self._busy)
        reply = Reply(self, handle, data, follow_redirects)
        try:
            self._prepare(handle, method, url, headers, data, timeout, stream)
            handle.set_long(CurlOpt.FOLLOWLOCATION, 1 if follow_redirects else 0)
            handle.reply = reply
            self._multi.add(handle.easy, handle)
        except BaseException:
            handle.reply = None
            reply._handle = None
            self._release(handle)
            raise
        if stream:
            idle = timeout[1] if isinstance(timeout, tuple) else timeout
            reply._deadline = self.loop.call_later(idle, self._headers_late, reply, idle)
        try:
            await reply._headers_ready
        except asyncio.CancelledError:
            reply._abort(TransferAborted("The request was cancelled."))
            raise
        return reply

    async def fetch(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        data: bytes | None = None,
        timeout: float | tuple[float, float] = 30.0,  # noqa: ASYNC109 (curl's, not asyncio's)
        follow_redirects: bool = False,
    ) -> tuple[Reply, bytes]:
        """A whole request: the reply and its body."""
        reply = await self.request(
            method,
            url,
            headers=headers,
            data=data,
            timeout=timeout,
            follow_redirects=follow_redirects,
        )
        try:
            return reply, await reply.aread()
        except BaseException:
            await reply.aclose()
            raise

    @staticmethod
    def _headers_late(reply: Reply, seconds: float) -> None:
        if reply._headers_ready.done():
            return
        reply._abort(
            TransferAborted(
                f"No response headers within {seconds:g}s.", CurlECode.OPERATION_TIMEDOUT
            )
        )

    def _prepare(
        self,
        handle: _Handle,
        method: str,
        url: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        data: bytes | None,
        timeout: float | tuple[float, float],
        stream: bool,
    ) -> None:
        method = method.upper()
        handle.set_text(CurlOpt.URL, url.encode())
        handle.set_action(CurlOpt.HTTPGET, 1)  # back to a plain GET: POST, NOBODY and UPLOAD off
        if method == "HEAD":
            handle.set_action(CurlOpt.NOBODY, 1)
            handle.set_text(CurlOpt.CUSTOMREQUEST, None)
        elif data is not None or method in ("POST", "PUT", "PATCH"):
            handle.set_body(data if data is not None else b"")  # the Reply keeps the body
            handle.set_text(CurlOpt.CUSTOMREQUEST, None if method == "POST" else method.encode())
        else:
            handle.set_text(CurlOpt.CUSTOMREQUEST, None if method == "GET" else method.encode())
        items = headers.items() if isinstance(headers, Mapping) else headers
        lines = [f"{name}: {value}".encode("latin-1") for name, value in items]
        if data is not None:
            lines.append(b"Expect:")  # no 100-continue round trip for larger bodies
        handle.set_headers(lines)
        connect, total = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        handle.set_long(CurlOpt.CONNECTTIMEOUT_MS, max(1, int(connect * 1000)))
        if stream:
            handle.set_long(CurlOpt.TIMEOUT_MS, 0)
            handle.set_long(CurlOpt.LOW_SPEED_LIMIT, 1)
            handle.set_long(CurlOpt.LOW_SPEED_TIME, max(1, round(total)))
        else:
            whole = connect + total if isinstance(timeout, tuple) else total
            handle.set_long(CurlOpt.TIMEOUT_MS, max(1, int(whole * 1000)))
            handle.set_long(CurlOpt.LOW_SPEED_LIMIT, 0)
            handle.set_long(CurlOpt.LOW_SPEED_TIME, 0)

    async def aclose(self) -> None:
        """Abort running transfers and free every handle."""
        if self._closed:
            return
        self._closed = True
        if self._shedding is not None:
            await self._shedding
        for handle in self._idle:
            handle.close()
        self._idle = []
        # Transfers still running end as if complete, as AsyncCurl.close() left them.
        for owner in self._multi.close():
            owner.transfer_done(0)
