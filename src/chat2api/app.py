"""``create_app``: the ASGI application and the lifespan of its resources."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from chat2api import __version__
from chat2api.admin.api import router as admin_router
from chat2api.api.chat import router as chat_router
from chat2api.api.downloads import router as downloads_router
from chat2api.api.errors import install_error_handlers
from chat2api.api.images import router as images_router
from chat2api.api.responses import router as responses_router
from chat2api.convert.usage import TokenCounter
from chat2api.gateway import gateway_router
from chat2api.pool.pool import AccountPool, pool_options
from chat2api.pool.schedule import scheduled_refresh
from chat2api.pool.sources import PoolAccounts, RefreshCache
from chat2api.sentinel import PowSolver
from chat2api.settings import Settings
from chat2api.state import AppState
from chat2api.store import open_store
from chat2api.upstream.auth import OAuthClient
from chat2api.upstream.chatgpt import ChatGPTBackend
from chat2api.upstream.downloads import Downloader
from chat2api.upstream.files import FileUploader
from chat2api.upstream.http import SessionPool

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """The chat2api app for ``settings``; resources live only inside the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(settings)
        sessions = SessionPool(
            impersonate=settings.impersonate,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.upstream_timeout,
        )
        workers = settings.pow_workers
        if workers is None:  # one solver process per core, a few at most
            workers = min(4, os.cpu_count() or 1)
        solver = PowSolver(workers=workers, time_budget=settings.pow_time_budget)
        backend = ChatGPTBackend(settings, sessions, solver)
        tokens = TokenCounter()  # the tokenizer's vocabulary lives in its worker process
        app.state.tokens = tokens
        oauth = OAuthClient(
            sessions, settings.oauth_base_url, settings.proxy_url[0] if settings.proxy_url else None
        )
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
        )
        scheduler = (
            asyncio.create_task(scheduled_refresh(pool, settings.refresh_check_seconds))
            if settings.scheduled_refresh
            else None
        )
        log.info(
            "chat2api %s ready: upstream %s, store %r",
            __version__,
            ", ".join(settings.chatgpt_base_url),
            store,
        )
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await scheduler
            await sessions.aclose()
            solver.close()
            await tokens.aclose()
            await store.close()

    app = FastAPI(
        title="chat2api",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    install_error_handlers(app)
    router = APIRouter(prefix=settings.prefix_path)
    router.include_router(chat_router)
    router.include_router(responses_router)
    router.include_router(downloads_router)
    router.include_router(images_router)
    router.include_router(admin_router)
    app.include_router(router)
    if settings.enable_gateway:
        # Last: its catch-all must never shadow a chat2api route.
        app.include_router(gateway_router(settings))
    return app
