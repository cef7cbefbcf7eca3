"""A separate process on a store, for the tests that kill one with SIGKILL.

    python store_child.py write <location> <batches> <size>
        add ``batches`` batches of ``size`` accounts, one ``add_accounts`` each;
        account ids say their batch: ``b<batch>-<i>``
    python store_child.py merge <location> <pairs>
        for each pair ``p<i>-a``/``p<i>-b`` (already stored, ``a`` added first),
        learn one identity for both: ``b`` merges into ``a``; prints ``merged <i>``
    python store_child.py hold <location> <lock> <ttl>
        take the lock, say so, and sleep (holding it) until killed
    python store_child.py slot <location> <account> <ttl>
        take the account's one slot as the pool does (renewed every ttl/3),
        say so, and sleep (holding it) until killed

``location`` is a SQLite path, or ``redis://…#<prefix>``. The writer prints
``ready`` once the store is open and ``batch <n>`` after each batch, so the
parent can kill it at a moment of its own choosing while it writes.
"""

from __future__ import annotations

import asyncio
import sys

from chat2api.pool.slots import SharedSlots
from chat2api.store.base import Account, Store
from chat2api.store.redis import RedisStore
from chat2api.store.sqlite import SQLiteStore


def open_store(location: str) -> Store:
    if location.startswith("redis://"):
        url, prefix = location.split("#", 1)
        return RedisStore(url, prefix=prefix)
    return SQLiteStore(location)


def batch(number: int, size: int) -> list[Account]:
    return [
        Account(id=f"b{number:04d}-{i:04d}", kind="access_token", secret=f"s-{number}-{i}")
        for i in range(size)
    ]


async def write(location: str, batches: int, size: int) -> None:
    store = open_store(location)
    print("ready", flush=True)
    for number in range(batches):
        await store.add_accounts(batch(number, size))
        print(f"batch {number}", flush=True)
    await store.close()
    print("done", flush=True)


async def merge(location: str, pairs: int) -> None:
    store = open_store(location)
    print("ready", flush=True)
    for i in range(pairs):
        await store.learn_identity(f"p{i:04d}-a", f"identity-{i}")
        await store.learn_identity(f"p{i:04d}-b", f"identity-{i}")
        print(f"merged {i}", flush=True)
    await store.close()
    print("done", flush=True)


async def hold(location: str, name: str, ttl: float) -> None:
    store = open_store(location)
    async with store.lock(name, ttl) as acquired:
        print("locked" if acquired else "busy", flush=True)
        await asyncio.sleep(3600)


async def slot(location: str, account: str, ttl: float) -> None:
    slots = SharedSlots(open_store(location), 1, ttl)
    lease = await slots.take(account)
    print("held" if lease else "busy", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    command, location, *rest = sys.argv[1:]
    if command == "write":
        asyncio.run(write(location, int(rest[0]), int(rest[1])))
    elif command == "merge":
        asyncio.run(merge(location, int(rest[0])))
    elif command == "slot":
        asyncio.run(slot(location, rest[0], float(rest[1])))
    else:
        asyncio.run(hold(location, rest[0], float(rest[1])))
