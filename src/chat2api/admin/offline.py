"""The account pool as ``chat2api tokens`` opens it: the store ``serve`` uses, no server.

The CLI builds the same store (``open_store``: SQLite under ``DATA_DIR``, or
Redis with ``REDIS_URL``) and an ``AccountPool`` whose OAuth client exchanges
RefreshTokens, so a change made here is seen by a running service at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from chat2api.pool.pool import AccountPool, pool_options
from chat2api.settings import Settings
from chat2api.store import open_store
from chat2api.upstream.auth import OAuthClient
from chat2api.upstream.http import SessionPool


@asynccontextmanager
async def open_pool(settings: Settings) -> AsyncIterator[AccountPool]:
    """An ``AccountPool`` on the configured store, closed (sessions, store) on exit."""
    store = open_store(settings)
    sessions = SessionPool(
        impersonate=settings.impersonate_list[0],
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.upstream_timeout,
    )
    try:
        oauth = OAuthClient(sessions, settings.oauth_base_url, settings.proxy_url)
        yield AccountPool(store, oauth, pool_options(settings))
    finally:
        await sessions.aclose()
        await store.close()
