"""Where a store test's data lives: a SQLite file, or a key prefix on the test Redis."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import redis

from chat2api.store.base import Store
from chat2api.store.redis import RedisStore
from chat2api.store.sealed import SealedStore, Sealer
from chat2api.store.sqlite import SQLiteStore

REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Backend:
    """Where one test's data lives; ``open()`` gives another client of the same data."""

    name: str
    path: Path | None = None
    prefix: str | None = None
    opened: list[Store] = field(default_factory=list)

    def open(self) -> Store:
        store: Store
        if self.name in ("sqlite", "sealed"):
            assert self.path is not None
            store = SQLiteStore(self.path)
            if self.name == "sealed":  # STORE_KEY: the same contract through the seal
                store = SealedStore(store, Sealer("contract-test-store-key"))
        else:
            assert self.prefix is not None
            store = RedisStore(REDIS_URL, prefix=self.prefix)
        self.opened.append(store)
        return store

    @property
    def location(self) -> str:
        """What the crash writer subprocess is told to open."""
        return str(self.path) if self.path is not None else f"{REDIS_URL}#{self.prefix}"


def delete_prefix(prefix: str) -> None:
    """Delete every key of a test's prefix (never anything else)."""
    with redis.Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
