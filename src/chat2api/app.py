"""``create_app``: the ASGI application and the lifespan of its resources.

The two endpoints that hold a stream open, ``POST /v1/chat/completions``
and ``POST /v1/responses``, are dispatched by :class:`Chat2APIApp` itself,
ahead of the framework's middleware and routing layers: those keep about
twenty coroutine frames, closures and exit stacks alive for as long as a
response streams, and every chunk passes through their ``send`` wrappers.
Served directly, open streams hold less and reach their first byte sooner
(docs/design.md, "Streams are served lean"). They get the same error
handling (``chat2api.api.errors.response_for_error``); every other route
goes through Starlette's middleware and router as usual: each module that
serves HTTP exports ``routes`` (``chat2api.api.routing``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import Message, Receive, Scope, Send

from chat2api.admin import api as admin_api
from chat2api.api import chat, downloads, images, responses
from chat2api.api.cors import Cors
from chat2api.api.errors import error_response, install_error_handlers, response_for_error
from chat2api.api.health import health_routes
from chat2api.api.requestlog import RequestLog
from chat2api.api.routing import Endpoint, prefixed
from chat2api.api.streaming import DisconnectWatch, EventStream
from chat2api.convert.usage import TokenCounter
from chat2api.errors import RequestTooLarge
from chat2api.pool.pool import AccountPool, pool_options
from chat2api.pool.schedule import identities_at_start, scheduled_refresh
from chat2api.pool.sources import PoolAccounts, RefreshCache
from chat2api.sentinel import PowSolver
from chat2api.settings import Settings
from chat2api.startup import startup_block
from chat2api.state import AppState
from chat2api.store import open_store
from chat2api.upstream.auth import OAuthClient
from chat2api.upstream.chatgpt import ChatGPTBackend
from chat2api.upstream.downloads import Downloader
from chat2api.upstream.files import FileUploader
from chat2api.upstream.http import SessionPool

log = logging.getLogger(__name__)
_NO_WEBSOCKET = "This endpoint is served over HTTP (POST) only, not over a WebSocket."


class BodyLimit:
    """``receive`` that raises ``RequestTooLarge`` once a chunked body passes ``limit``.

    A body with a ``Content-Length`` is judged by it before anything is read
    (the server never passes more than it announced).
    """

    __slots__ = ("_limit", "_receive", "_seen")

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self._limit = limit
        self._seen = 0

    async def __call__(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self._seen += len(message.get("body", b""))
            if self._seen > self._limit:
                raise too_large(self._limit)
        return message


def too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(
        f"The request body is larger than this deployment accepts ({limit} bytes, "
        "MAX_REQUEST_BYTES).",
    )


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length``; None when absent (a chunked body) or unreadable."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class Chat2APIApp(Starlette):
    """Starlette, with a few ``POST`` endpoints served without its per-request layers."""

    def __init__(
        self,
        *,
        direct: dict[str, Endpoint],
        cors: Cors | None = None,
        max_body: int = 20 * 1024 * 1024,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.direct_routes = direct  # path -> endpoint, for POST
        self.cors = cors if cors is not None and cors.enabled else None
        self.max_body = max_body
        self.request_log = RequestLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.request_log(scope, receive, send, self._http)
            return
        await super().__call__(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.cors is not None and (allow := self.cors.allowed(scope)) is not None:
            if Cors.is_preflight(scope):
                await Cors.preflight(scope, send, allow)
                return
            send = Cors.wrap(send, allow)
        length = declared_length(scope)
        if length is not None and length > self.max_body:
            # Refused before a byte of it is read, whoever sent it.
            await error_response(too_large(self.max_body))(scope, receive, send)
            return
        if length is None:
            receive = BodyLimit(receive, self.max_body)
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        endpoint = self.direct_routes.get(path)
        if endpoint is not None:
            await self._serve_direct(endpoint, scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def _serve_direct(
        self, endpoint: Endpoint, scope: Scope, receive: Receive, send: Send
    ) -> None:
        scope["app"] = self
        server_headers = scope["headers"]  # the server's list: Request works on a copy
        watched = _WatchAfterBody(receive)
        request = Request(scope, watched.receive, send)
        try:
            if request.method != "POST":
                if request.headers.get("upgrade", "").lower() == "websocket":
                    # 426, not 405: WebSocket clients (the Codex CLI) fall back to HTTP at once.
                    raise HTTPException(426, detail=_NO_WEBSOCKET)
                raise HTTPException(405, headers={"Allow": "POST"})
            response = await endpoint(request)
        except asyncio.CancelledError:
            # The client left while a non-streamed answer was being made: the
            # upstream turn (and its account) was let go by the cancellation.
            if not watched.stop() or _uncancel() > 0:
                raise
            log.info("client left before the answer was ready: %s", request.url.path)
            return
        except Exception as exc:  # noqa: BLE001 (each answers in the OpenAI envelope, 500s logged)
            response = response_for_error(request, exc)
        if watched.left:  # the client left just as the answer was ready
            watched.stop()
            _uncancel()
            return
        if isinstance(response, EventStream):
            # The stream goes on with this watch: no second receive() waits beside it.
            response.watch = watched.take()
        else:
            watched.stop()
        # A stream can last minutes: neither the request's body nor its headers
        # (the client's bearer token among them) need to live as long. The
        # endpoint has read what it needs; the server reads them no more.
        del request
        for headers in (server_headers, scope["headers"]):
            if isinstance(headers, list):
                headers.clear()
        await response(scope, receive, send)


class _WatchAfterBody:
    """Arms a disconnect watch on the request's task once the whole body was read.

    Until then the endpoint reads the body itself; after it, nothing else
    calls ``receive()`` until the response, so the watch may (ASGI: the
    server answers it with ``http.disconnect`` once the client is gone).
    """

    __slots__ = ("_receive", "_watch")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._watch: DisconnectWatch | None = None

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            task = asyncio.current_task()
            if task is not None and self._watch is None:
                self._watch = DisconnectWatch(self._receive, task)
        return message

    @property
    def left(self) -> bool:
        """Whether the client left (and the task was cancelled for it)."""
        return self._watch is not None and self._watch.left

    def stop(self) -> bool:
        """Stop watching; whether the client left (and the task was cancelled for it)."""
        watch, self._watch = self._watch, None
        if watch is None:
            return False
        watch.stop()
        return watch.left

    def take(self) -> DisconnectWatch | None:
        """The watch, still armed, for the response to stop; none is kept here."""
        watch, self._watch = self._watch, None
        return watch


def _uncancel() -> int:
    task = asyncio.current_task()
    return task.uncancel() if task is not None else 0


GC_THRESHOLDS = (20_000, 20, 20)  # the collector's generations, while serving


def create_app(settings: Settings) -> Chat2APIApp:
    """The chat2api app for ``settings``; resources live only inside the lifespan."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = open_store(settings)
        sessions = SessionPool(
            impersonate=settings.impersonate_list[0],
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.upstream_timeout,
        )
        workers = settings.pow_workers
        if workers is None:  # one solver process per core, a few at most
            workers = min(4, os.cpu_count() or 1)
        solver = PowSolver(workers=workers, time_budget=settings.pow_time_budget)
        backend = ChatGPTBackend(settings, sessions, solver)
        # The tokenizer's vocabulary lives in its worker process, stopped when idle.
        tokens = TokenCounter(idle_seconds=settings.token_worker_idle_seconds)
        oauth = OAuthClient(sessions, settings.oauth_base_url, settings.proxy_url)
        pool = AccountPool(store, oauth, pool_options(settings))
        app.state.chat2api = AppState(
            settings,
            sessions,
            solver,
            backend,
            store,
            pool,
            PoolAccounts(pool),
            RefreshCache(oauth),
            FileUploader(backend),
            Downloader(backend, sessions, settings.export_proxy_url),
            tokens,
        )
        scheduler = (
            asyncio.create_task(scheduled_refresh(pool, settings.refresh_check_seconds))
            if settings.scheduled_refresh
            else None
        )
        identities = asyncio.create_task(identities_at_start(pool))
        log.info("%s", startup_block(settings, store))
        # What start-up built lives as long as the process: kept out of the
        # collector's view, a full collection during a burst of requests
        # walks only the objects of those requests.
        gc.freeze()
        # Requests free their objects by reference counting; with 1,000 streams
        # open, the default thresholds ran 341 collections in one round, 6.7 s
        # of the server's wall time (bench/README.md): now about ten.
        thresholds = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            for task in (scheduler, identities):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await sessions.aclose()
            solver.close()
            await tokens.aclose()
            await store.close()

    prefix = settings.prefix_path
    routes: list[BaseRoute] = [*health_routes()]  # outside API_PREFIX, for probes
    routes += prefixed(
        prefix,
        [*chat.routes, *responses.routes, *downloads.routes, *images.routes, *admin_api.routes],
    )
    if settings.enable_gateway:  # imported only then: most deployments never load it
        from chat2api.gateway import gateway_routes

        # Last: its catch-all must never shadow a chat2api route.
        routes += gateway_routes(settings)
    app = Chat2APIApp(
        direct={
            f"{prefix}/v1/chat/completions": chat.chat_completions,
            f"{prefix}/v1/responses": responses.create_response,
        },
        cors=Cors(settings.cors_allow_origins, prefix),
        max_body=settings.max_request_bytes,
        routes=routes,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    return app
