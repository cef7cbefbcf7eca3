"""Fixtures for the store contract: one suite, run on SQLite and on Redis.

Redis is the real server on 127.0.0.1:6379 (CI starts one); each test gets
a random key prefix on db 0 and its keys are deleted at teardown. If Redis
is not reachable the Redis half of the suite fails, it does not skip.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from store_backends import Backend, delete_prefix

from chat2api.store.base import Store


@pytest.fixture
def anyio_backend() -> str:
    """The store runs on asyncio, as the app does."""
    return "asyncio"


@pytest.fixture(params=["sqlite", "redis", "sealed"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh, empty store location on each backend (``sealed``: SQLite under STORE_KEY)."""
    if request.param in ("sqlite", "sealed"):
        yield Backend(request.param, path=tmp_path / "chat2api.db")
        return
    prefix = f"test-{uuid.uuid4().hex}"
    try:
        yield Backend("redis", prefix=prefix)
    finally:
        delete_prefix(prefix)


@pytest.fixture
async def store_factory(backend: Backend, anyio_backend: str) -> AsyncIterator[Callable[[], Store]]:
    """Open clients of the test's store; all of them are closed at teardown."""
    yield backend.open
    for store in backend.opened:
        await store.close()


@pytest.fixture
async def store(store_factory: Callable[[], Store]) -> Store:
    """One client of a fresh store."""
    return store_factory()
