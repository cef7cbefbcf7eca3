"""chat2api.store: the account pool's persistence (see ``store.base`` for the contract)."""

from __future__ import annotations

import sqlite3
import sys
from typing import TYPE_CHECKING

from chat2api.store.base import Account, Store, account_key, fingerprint

if TYPE_CHECKING:
    from chat2api.settings import Settings

__all__ = [
    "DB_FILE",
    "Account",
    "Store",
    "account_key",
    "fingerprint",
    "open_store",
    "store_errors",
]

DB_FILE = "chat2api.db"


def open_store(settings: Settings) -> Store:
    """The store ``settings`` ask for: Redis if ``REDIS_URL`` is set, else SQLite.

    With ``STORE_KEY`` its tokens and records are sealed at rest (``store.sealed``).
    """
    store: Store
    if settings.redis_url:
        from chat2api.store.redis import RedisStore

        store = RedisStore(settings.redis_url, prefix=settings.redis_prefix)
    else:
        from chat2api.store.sqlite import SQLiteStore

        store = SQLiteStore(settings.data_dir / DB_FILE)
    if settings.store_key is None:
        return store
    from chat2api.store.sealed import SealedStore, Sealer

    return SealedStore(store, Sealer(settings.store_key.get_secret_value()))


def store_errors() -> tuple[type[Exception], ...]:
    """The exceptions a store backend may raise when it cannot be used.

    The Redis client is imported only when ``REDIS_URL`` selects it; until
    then no Redis error can occur, so its class is looked up, not imported.
    """
    errors: tuple[type[Exception], ...] = (OSError, sqlite3.Error)
    redis = sys.modules.get("redis.exceptions")
    if redis is not None:
        errors += (redis.RedisError,)
    return errors
