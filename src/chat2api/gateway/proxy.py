"""The reverse proxy to the upstream web app, as the logged-in browser's account.

What goes up: the method, path, query and body as the browser sent them, an
allow-list of the browser's headers (spec 9.2), and the account's bearer
token in place of whatever ``Authorization`` the browser had. Cookies never
go up: the browser's cookies are the gateway's own.

What comes back: the status and headers minus hop-by-hop ones, the body
encoding (the transport has already decoded the body), the upstream's cookies (they
belong to the upstream host and would never be sent back up anyway) and its
transport policies (HSTS, Alt-Svc). Text bodies (HTML, JS, CSS, JSON) are
read whole and every upstream base URL in them (plain or JSON-escaped) is
replaced by the gateway's own origin, as in ``Location`` and other headers;
everything else, event streams included, is passed on chunk by chunk as it
arrives.

A conversation POST on a pool account holds a concurrency slot of that
account (``ACCOUNT_CONCURRENCY``) until its stream ends, and its outcome is
recorded like an API turn's (a 429 cools the account, a 401 refreshes or
marks it); other requests only read the account's current AccessToken.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from chat2api.errors import UpstreamRateLimited, UpstreamUnauthorized
from chat2api.gateway.isolation import LIST_PATH, NOT_FOUND, SeedConversations
from chat2api.gateway.paths import encoded
from chat2api.pool.pool import PoolLease
from chat2api.state import AppState
from chat2api.upstream.browser import client_hints
from chat2api.upstream.errors import error_from_response
from chat2api.upstream.http import iter_body, map_transport_errors
from chat2api.upstream.transport import Reply
from chat2api.values import Credentials

FORWARDED = frozenset(
    {
        "accept",
        "accept-language",
        "content-type",
        "oai-client-build-number",
        "oai-client-version",
        "oai-device-id",
        "oai-echo-logs",
        "oai-language",
        "oai-session-id",
        "oai-telemetry",
        "priority",
        "x-conduit-token",
        "x-oai-turn-trace-id",
        "x-openai-target-path",
        "x-openai-target-route",
        "x-openai-web-frontend",
        "if-none-match",
        "if-modified-since",
    }
)
FORWARDED_PREFIXES = ("openai-sentinel-", "sec-fetch-", "x-ms-")  # x-ms-: blob uploads
DROPPED_RESPONSE = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-encoding",
        "set-cookie",
        "strict-transport-security",
        "alt-svc",
    }
)
TEXT_TYPES = ("text/html", "javascript", "ecmascript", "json", "text/css", "text/plain", "xml")
CONVERSATION = re.compile(r"/backend-(api|anon|alt)/(f/)?conversation")
MAX_ERROR_BODY = 65536


def forwarded_headers(request: Request) -> dict[str, str]:
    """The browser's headers that may go upstream (see the module docstring)."""
    return {
        name: value
        for name, value in request.headers.items()
        if name in FORWARDED or name.startswith(FORWARDED_PREFIXES)
    }


class Rewriter:
    """Upstream base URLs → the gateway's origin, in text and header values."""

    def __init__(self, bases: list[str], origin: str) -> None:
        pairs: list[tuple[str, str]] = []
        for base in bases:
            pairs.append((base, origin))
            pairs.append((base.replace("/", "\\/"), origin.replace("/", "\\/")))
        self._pairs = [(a, b) for a, b in pairs if a != b]

    def text(self, value: str) -> str:
        for old, new in self._pairs:
            value = value.replace(old, new)
        return value

    def body(self, data: bytes, charset: str) -> bytes:
        try:
            text = data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            return data  # not the text it claims to be: left alone
        return self.text(text).encode(charset)


def _charset(content_type: str) -> str:
    match = re.search(r"charset=\"?([\w.:-]+)", content_type, re.IGNORECASE)
    return match.group(1) if match else "utf-8"


def _model(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "auto"
    model = data.get("model") if isinstance(data, dict) else None
    return model if isinstance(model, str) and model else "auto"


def _posts_turn(method: str, path: str) -> bool:
    return method == "POST" and CONVERSATION.fullmatch(path.rstrip("/")) is not None


def _without_history(body: bytes) -> bytes:
    """A conversation body kept out of the account's history (``FORCE_NO_HISTORY``)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body  # not JSON: the upstream will refuse it as it is
    if not isinstance(data, dict):
        return body
    data["history_and_training_disabled"] = True
    return orjson.dumps(data)


class ClosingStream(StreamingResponse):
    """A streamed response that runs ``on_close`` however it ends (even unstarted)."""

    def __init__(
        self,
        body: AsyncIterator[bytes],
        status_code: int,
        headers: list[tuple[str, str]],
        on_close: Callable[[], Awaitable[None]],
    ) -> None:
        super().__init__(body, status_code=status_code)
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._on_close()


class Forwarder:
    """Sends one browser request upstream and turns the answer into a response."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.settings = state.settings

    def _headers(self, request: Request, credentials: Credentials, base: str) -> dict[str, str]:
        headers = forwarded_headers(request)
        user_agent = self.state.backend.user_agent_for(credentials)
        headers.update(client_hints(user_agent))  # the browser's own would not match it
        headers["User-Agent"] = user_agent
        headers["Origin"] = base
        headers["Referer"] = base + "/"
        if credentials.access_token is not None:
            headers["Authorization"] = f"Bearer {credentials.access_token}"
        if credentials.account_id:
            headers["ChatGPT-Account-Id"] = credentials.account_id
        if self.settings.auth_key:
            headers["authkey"] = self.settings.auth_key
        return headers

    async def forward(
        self,
        request: Request,
        path: str,
        credentials: Credentials,
        lease_for: Callable[[str], Awaitable[PoolLease]] | None,
        scope: SeedConversations | None = None,
    ) -> Response:
        """Proxy ``request`` to ``path`` (normalised, ``gateway.paths``).

        ``lease_for(model)`` holds a pool account for a conversation; ``scope``
        limits a seed to its own conversations (``gateway.isolation``).
        """
        body = await request.body()
        method = request.method.upper()
        if scope is not None and await scope.refuses(method, path, body):
            return Response(orjson.dumps(NOT_FOUND), 404, media_type="application/json")
        lease: PoolLease | None = None
        conversation = method == "POST" and CONVERSATION.fullmatch(path.rstrip("/")) is not None
        if conversation and self.settings.force_no_history:
            body = _without_history(body)
        if lease_for is not None and conversation:
            lease = await lease_for(_model(body))
            credentials = lease.credentials
        try:
            return await self._forward(request, path, method, body, credentials, lease, scope)
        except BaseException:
            if lease is not None:
                await lease.release()
            raise

    async def _forward(
        self,
        request: Request,
        path: str,
        method: str,
        body: bytes,
        credentials: Credentials,
        lease: PoolLease | None,
        scope: SeedConversations | None,
    ) -> Response:
        target = self.state.backend.next_target(credentials)
        session = self.state.sessions.session(target.base_url, target.proxy, target.impersonate)
        url = target.base_url + encoded(path)  # exactly the path that was checked
        if request.url.query:
            url += "?" + request.url.query
        timeout = self.settings.upstream_timeout
        with map_transport_errors("the gateway"):
            upstream = await session.request(
                method,
                url,
                data=body or None,
                headers=self._headers(request, credentials, target.base_url),
                timeout=timeout,
                stream=True,
            )
        origin = f"{request.url.scheme}://{request.url.netloc}"
        rewriter = Rewriter(self.settings.chatgpt_base_url, origin)
        status = upstream.status_code
        content_type = upstream.headers.get("content-type") or ""
        headers = [
            (name, rewriter.text(value))
            for name, value in upstream.headers.multi_items()
            if name.lower() not in DROPPED_RESPONSE
        ]
        if lease is not None and status >= 400:
            data = await self._read(upstream, MAX_ERROR_BODY)
            await self._report(lease, status, upstream, data)
            await lease.release()
            return Response(data, status_code=status, headers=dict(headers))
        if lease is not None:
            await lease.succeeded()
        if (
            any(kind in content_type for kind in TEXT_TYPES)
            and "event-stream" not in content_type
            and method != "HEAD"
        ):
            try:
                data = await self._read(upstream, None)
            finally:
                if lease is not None:
                    await lease.release()
            if scope is not None and status == 200 and LIST_PATH.fullmatch(path.rstrip("/")):
                data = await scope.filtered_list(data)
            data = rewriter.body(data, _charset(content_type))
            response = Response(data, status_code=status)
            response.raw_headers = [
                (k.encode("latin-1"), v.encode("latin-1")) for k, v in headers
            ] + [(b"content-length", str(len(data)).encode())]
            return response

        async def close() -> None:
            await upstream.aclose()
            if lease is not None:
                await lease.release()

        chunks: AsyncIterator[bytes] = iter_body(upstream)
        if scope is not None and status == 200 and _posts_turn(method, path):
            chunks = scope.watch(chunks)  # the seed's new conversation is remembered
        return ClosingStream(chunks, status, headers, close)

    @staticmethod
    async def _read(upstream: Reply, limit: int | None) -> bytes:
        parts: list[bytes] = []
        size = 0
        async with contextlib.aclosing(iter_body(upstream)) as chunks:
            async for chunk in chunks:
                parts.append(chunk)
                size += len(chunk)
                if limit is not None and size >= limit:
                    break  # closing the iterator aborts the rest of the transfer
        return b"".join(parts)

    @staticmethod
    async def _report(lease: PoolLease, status: int, upstream: Reply, data: bytes) -> None:
        headers = upstream.headers.lower()
        error = error_from_response(status, headers, data, what="the gateway")
        if isinstance(error, UpstreamRateLimited | UpstreamUnauthorized):
            await lease.failed(error)
