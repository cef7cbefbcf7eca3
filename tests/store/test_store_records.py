"""The ``Store`` record contract (``put_record`` …), run against every backend,
and how each backend keeps records (Redis keys, SQLite purge)."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from store_backends import REDIS_URL, delete_prefix

from chat2api.store.base import Store
from chat2api.store.redis import RedisStore
from chat2api.store.sqlite import PURGE_BATCH, SQLiteStore

pytestmark = pytest.mark.anyio

TTL = 0.3  # seconds: short, so the expiry tests stay fast
PAST_TTL = 0.5  # how long they wait for it to pass

NESTED: dict[str, Any] = {
    "id": "resp_Ωmega-1",
    "text": 'héllo 世界 🚀 \u0000 "quoted" \\ back\nslash',
    "output": [{"type": "message", "content": [{"type": "output_text", "text": "hi"}]}],
    "usage": {"input_tokens": 12, "output_tokens": 3, "ratio": 0.25},
    "flags": [True, False, None],
    "empty": {},
}


async def test_put_get_round_trip(store: Store) -> None:
    """A nested object with unicode, escapes and every JSON type comes back equal."""
    await store.put_record("response", "resp_1", NESTED)
    assert await store.get_record("response", "resp_1") == NESTED


async def test_record_is_shared_between_clients(store_factory: Callable[[], Store]) -> None:
    """A record put by one client is read and deleted by another."""
    one, two = store_factory(), store_factory()
    await one.put_record("binding", "conv-1", {"account": "abc"})
    assert await two.get_record("binding", "conv-1") == {"account": "abc"}
    assert await two.delete_record("binding", "conv-1") is True
    assert await one.get_record("binding", "conv-1") is None


async def test_get_missing_record(store: Store) -> None:
    """An unknown key reads as None."""
    assert await store.get_record("response", "nope") is None


async def test_put_replaces(store: Store) -> None:
    """A second put under the same key replaces the whole object."""
    await store.put_record("binding", "conv-1", {"account": "a", "extra": 1})
    await store.put_record("binding", "conv-1", {"account": "b"})
    assert await store.get_record("binding", "conv-1") == {"account": "b"}


async def test_delete_record(store: Store) -> None:
    """Delete says whether the record existed, and it is gone after."""
    await store.put_record("response", "r", {"x": 1})
    assert await store.delete_record("response", "r") is True
    assert await store.get_record("response", "r") is None
    assert await store.delete_record("response", "r") is False
    assert await store.delete_record("response", "never") is False


async def test_kinds_are_separate_namespaces(store: Store) -> None:
    """The same key under two kinds is two records; deleting one leaves the other."""
    await store.put_record("response", "same", {"kind": "response"})
    await store.put_record("binding", "same", {"kind": "binding"})
    assert await store.get_record("response", "same") == {"kind": "response"}
    assert await store.get_record("binding", "same") == {"kind": "binding"}
    assert await store.delete_record("response", "same") is True
    assert await store.get_record("binding", "same") == {"kind": "binding"}
    assert await store.get_record("other", "same") is None


async def test_keys_may_hold_any_string(store: Store) -> None:
    """Keys with colons, spaces, unicode or nothing at all are distinct records."""
    keys = ["a:b", "a", "a:b:c", "", " ", "ключ", "*", "x" * 500]
    for n, key in enumerate(keys):
        await store.put_record("binding", key, {"n": n})
    assert [await store.get_record("binding", key) for key in keys] == [
        {"n": n} for n in range(len(keys))
    ]


@pytest.mark.parametrize("kind", ["", "a:b", ":"])
async def test_bad_kind_is_refused(store: Store, kind: str) -> None:
    """A kind that is empty or holds ':' (it could alias another kind's key) raises."""
    with pytest.raises(ValueError, match="kind"):
        await store.put_record(kind, "k", {})
    with pytest.raises(ValueError, match="kind"):
        await store.get_record(kind, "k")
    with pytest.raises(ValueError, match="kind"):
        await store.delete_record(kind, "k")


@pytest.mark.parametrize(
    ("value", "ttl"),
    [
        ([1, 2], None),
        ("text", None),
        ({1: "non-string key"}, None),
        ({"x": object()}, None),
        ({"ok": 1}, 0),
        ({"ok": 1}, -1.0),
        ({"ok": 1}, float("nan")),
    ],
)
async def test_bad_value_or_ttl_is_refused(store: Store, value: Any, ttl: float | None) -> None:
    """A non-object value or a non-positive ttl raises and leaves the old record."""
    await store.put_record("response", "r", {"old": True})
    with pytest.raises(ValueError, match="record"):
        await store.put_record("response", "r", value, ttl)
    assert await store.get_record("response", "r") == {"old": True}


async def test_ttl_expiry(store: Store) -> None:
    """A record with a ttl reads as absent after it; replacing it replaces the ttl too."""
    await store.put_record("response", "short", {"n": 1}, ttl=TTL)
    await store.put_record("response", "long", {"n": 2}, ttl=60)
    await store.put_record("response", "made-forever", {"n": 3}, ttl=TTL)
    await store.put_record("response", "made-forever", {"n": 3})
    await store.put_record("response", "made-short", {"n": 4})
    await store.put_record("response", "made-short", {"n": 4}, ttl=TTL)
    assert await store.get_record("response", "short") == {"n": 1}
    await asyncio.sleep(PAST_TTL)
    assert await store.get_record("response", "short") is None
    assert await store.delete_record("response", "short") is False
    assert await store.get_record("response", "made-short") is None
    assert await store.get_record("response", "long") == {"n": 2}
    assert await store.get_record("response", "made-forever") == {"n": 3}
    # An expired key can be put again, as new.
    await store.put_record("response", "short", {"n": 5})
    assert await store.get_record("response", "short") == {"n": 5}


async def test_no_expiry_without_ttl(store: Store) -> None:
    """A record put without a ttl outlives a short-ttl record put with it."""
    await store.put_record("binding", "forever", {"account": "a"})
    await store.put_record("binding", "brief", {"account": "b"}, ttl=TTL)
    await asyncio.sleep(PAST_TTL)
    assert await store.get_record("binding", "brief") is None
    assert await store.get_record("binding", "forever") == {"account": "a"}
    assert await store.delete_record("binding", "forever") is True


async def test_concurrent_puts_of_different_keys(store_factory: Callable[[], Store]) -> None:
    """60 puts at once from two clients, each to its own key, are all kept."""
    one, two = store_factory(), store_factory()
    await asyncio.gather(
        *(
            (one if n % 2 else two).put_record("binding", f"conv-{n}", {"n": n}, ttl=60)
            for n in range(60)
        )
    )
    for n in range(60):
        assert await one.get_record("binding", f"conv-{n}") == {"n": n}


async def test_large_value(store: Store) -> None:
    """A ~200 KB response round-trips intact."""
    value = {
        "id": "resp_big",
        "output": [{"type": "output_text", "text": f"{n:06d} " + "é" * 200} for n in range(500)],
    }
    await store.put_record("response", "resp_big", value)
    assert await store.get_record("response", "resp_big") == value


# --- how each backend keeps them ---------------------------------------------------


async def test_redis_record_layout() -> None:
    """On Redis a record is one key ``<prefix>:rec:<kind>:<key>``, its ttl Redis's own."""
    prefix = f"test-{uuid.uuid4().hex}"
    store = RedisStore(REDIS_URL, prefix=prefix)
    try:
        await store.put_record("binding", "conv:1", {"a": 1}, ttl=60)
        await store.put_record("response", "r", {"b": 2})
        with redis.Redis.from_url(REDIS_URL) as client:
            assert sorted(client.scan_iter(match=f"{prefix}:*")) == [
                f"{prefix}:rec:binding:conv:1".encode(),
                f"{prefix}:rec:response:r".encode(),
            ]
            assert 59_000 < client.pttl(f"{prefix}:rec:binding:conv:1") <= 60_000
            assert client.pttl(f"{prefix}:rec:response:r") == -1
    finally:
        await store.close()
        delete_prefix(prefix)


class FakeClock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_sqlite_purges_expired_rows_in_bounded_batches(tmp_path: Path) -> None:
    """On SQLite each put deletes at most ``PURGE_BATCH`` expired rows; live rows stay."""
    path = tmp_path / "chat2api.db"
    clock = FakeClock()
    store = SQLiteStore(path, clock=clock)
    expired = PURGE_BATCH + 20

    def rows() -> int:
        db = sqlite3.connect(path)
        try:
            return int(db.execute("SELECT COUNT(*) FROM records").fetchone()[0])
        finally:
            db.close()

    try:
        # The clock stands still while they are written: none expires mid-loop.
        for n in range(expired):
            await store.put_record("response", f"old-{n}", {"n": n}, ttl=10)
        await store.put_record("binding", "kept", {"n": -1})
        assert rows() == expired + 1
        clock.now += 10  # every ttl'd record expires at once (expires_at <= now)
        assert await store.get_record("response", "old-0") is None
        assert rows() == expired + 1  # reads hide them; only puts purge
        await store.put_record("binding", "new-1", {})
        assert rows() == expired + 1 - PURGE_BATCH + 1
        await store.put_record("binding", "new-2", {})
        assert rows() == 3
        assert await store.get_record("binding", "kept") == {"n": -1}
    finally:
        await store.close()
