"""The shared store: Redis, for several chat2api instances behind one pool.

Key layout (``P`` is the key prefix, ``chat2api`` by default)::

    P:acct:<id>      hash    one account; absent fields are None;
                             cooldowns are fields ``cd:<model>`` → epoch
    P:accounts       zset    account ids, scored by insertion order (oldest first)
    P:seq            string  the last insertion-order score handed out
    P:version        string  bumped with every add/remove/clear
    P:counter:<name> string  ``next_counter`` (INCR)
    P:lock:<name>    string  the lock's owner token, with a PX expiry
    P:slots:<id>     zset    concurrency slots held on one account: lease →
                             expiry (ms, Redis's clock); the key itself
                             expires with the latest of them
    P:rec:<kind>:<key>  string  one record (JSON object), with a PX expiry if
                             it has a ttl: Redis expires it, nothing sweeps
    P:identities     hash    identity → the account that has it
    P:merged         hash    an id merged into another → the survivor's id
    P:merged_into:<id>  set  the ids merged into ``<id>`` (to repoint them
                             when ``<id>`` is merged in turn)

Everything that touches more than one key (add, remove, clear) or must not
write to a removed account (the per-account updates) is a Lua script, which
Redis runs atomically: a client that dies mid-call leaves all or nothing.
``learn_identity`` computes a merge in Python (``merge_accounts``, shared
with SQLite) and writes it in one ``MULTI``/``EXEC`` under ``WATCH`` of
every key it read: a concurrent change makes it start over, a client that
dies before ``EXEC`` leaves nothing.
The scripts also touch keys they derive from the prefix, so the store
expects a single Redis server, not a cluster.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from chat2api.errors import StoreUnavailable
from chat2api.store.base import (
    Account,
    AccountKind,
    AccountStatus,
    Learnt,
    StoreErrorMap,
    check_account,
    check_record_id,
    decode_record,
    encode_record,
    merge_accounts,
)

DEFAULT_PREFIX = "chat2api"
CONNECT_TIMEOUT = 2.0  # seconds: a Redis that does not answer is an outage, not a wait
COMMAND_TIMEOUT = 10.0
LOCK_POLL = (0.005, 0.025)  # seconds between tries for a held lock, jittered
_WATCH_TRIES = 50  # a merge started over because a key it read changed, at most
_LIST_CHUNK = 500  # accounts read per pipeline round trip by list_accounts
_COOLDOWN = "cd:"
# A connection Redis closed (a restart, an idle timeout) is replaced and the
# command sent again, twice at most and within a fraction of a second.
_RECONNECT = (redis_errors.ConnectionError, redis_errors.TimeoutError)
_OUTAGE = StoreErrorMap(
    "Redis",
    (
        redis_errors.ConnectionError,
        redis_errors.TimeoutError,
        redis_errors.ReadOnlyError,
        redis_errors.OutOfMemoryError,
        redis_errors.BusyLoadingError,
    ),
)

# KEYS: accounts zset, seq, version, merged, then one account key per account.
# ARGV: the key prefix ("P:"), then a JSON object of the account's fields
# (string values) per account key.
_ADD = """
local added = {}
for i = 5, #KEYS do
  local id = cjson.decode(ARGV[i - 3])['id']
  local into = redis.call('HGET', KEYS[4], id)
  local alias = into and redis.call('EXISTS', ARGV[1] .. 'acct:' .. into) == 1
  if not alias and into then
    redis.call('HDEL', KEYS[4], id)
    redis.call('SREM', ARGV[1] .. 'merged_into:' .. into, id)
  end
  if not alias and redis.call('EXISTS', KEYS[i]) == 0 then
    local fields = cjson.decode(ARGV[i - 3])
    local flat = {}
    for k, v in pairs(fields) do
      flat[#flat + 1] = k
      flat[#flat + 1] = v
    end
    redis.call('HSET', KEYS[i], unpack(flat))
    redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), fields['id'])
    added[#added + 1] = fields['id']
  end
end
if #added > 0 then redis.call('INCR', KEYS[3]) end
return added
"""

# KEYS: accounts zset, version, account key, identities. ARGV: id.
_REMOVE = """
local identity = redis.call('HGET', KEYS[3], 'identity')
if redis.call('DEL', KEYS[3]) == 0 then return 0 end
if identity and redis.call('HGET', KEYS[4], identity) == ARGV[1] then
  redis.call('HDEL', KEYS[4], identity)
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('INCR', KEYS[2])
return 1
"""

# KEYS: accounts zset, version, identities, merged.
# ARGV: the account key prefix ("P:acct:"), the merged-into prefix.
_CLEAR = """
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do
  redis.call('DEL', ARGV[1] .. id)
  redis.call('DEL', ARGV[2] .. id)
end
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4])
if #ids > 0 then redis.call('INCR', KEYS[2]) end
return #ids
"""

# KEYS: account key. ARGV: n, then n field/value pairs to set, then fields to delete.
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = tonumber(ARGV[1])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 2, 1 + 2 * n)) end
if #ARGV > 1 + 2 * n then redis.call('HDEL', KEYS[1], unpack(ARGV, 2 + 2 * n)) end
return 1
"""

# KEYS: account key. ARGV: counter field, last_used.
_RECORD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HSET', KEYS[1], 'last_used', ARGV[2])
return 1
"""

# KEYS: account key.
_CLEAR_COOLDOWNS = """
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 3) == 'cd:' then redis.call('HDEL', KEYS[1], field) end
end
return 1
"""

# KEYS: lock key. ARGV: owner.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# Slot expiries use the server's clock, so instances with skewed clocks agree.
_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS[1] = slots; ARGV = lease, limit, ttl ms.
_TAKE_SLOT = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""
)

# KEYS = slots of each pair; ARGV[1] = ttl ms, ARGV[1 + i] = the lease of KEYS[i].
_RENEW_SLOTS = (
    _NOW_MS
    + """
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if redis.call('ZSCORE', key, ARGV[i + 1]) then
    redis.call('ZADD', key, 'XX', now + ttl, ARGV[i + 1])
    redis.call('PEXPIRE', key, ttl)
  end
end
return 0
"""
)

_SLOTS_HELD = _NOW_MS + "return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')"


def _fields(account: Account, added_at: float) -> dict[str, str]:
    """An account as hash fields; None values are left out."""
    values: dict[str, Any] = {
        "id": account.id,
        "kind": account.kind,
        "secret": account.secret,
        "workspace": account.workspace,
        "access_token": account.access_token,
        "access_expires_at": account.access_expires_at,
        "plan": account.plan,
        "status": account.status,
        "dead_reason": account.dead_reason,
        "last_used": account.last_used,
        "successes": account.successes,
        "failures": account.failures,
        "added_at": account.added_at or added_at,
        "identity": account.identity,
    }
    values |= {_COOLDOWN + model: until for model, until in account.cooldowns.items()}
    return {
        k: repr(v) if isinstance(v, float) else str(v) for k, v in values.items() if v is not None
    }


def _float(value: str | None) -> float | None:
    return None if value is None else float(value)


def _account(fields: dict[str, str]) -> Account:
    return Account(
        id=fields["id"],
        kind=cast(AccountKind, fields["kind"]),
        secret=fields["secret"],
        workspace=fields.get("workspace"),
        access_token=fields.get("access_token"),
        access_expires_at=_float(fields.get("access_expires_at")),
        plan=fields.get("plan"),
        status=cast(AccountStatus, fields.get("status", "active")),
        dead_reason=fields.get("dead_reason"),
        cooldowns={
            k.removeprefix(_COOLDOWN): float(v)
            for k, v in fields.items()
            if k.startswith(_COOLDOWN)
        },
        last_used=_float(fields.get("last_used")),
        successes=int(fields.get("successes", 0)),
        failures=int(fields.get("failures", 0)),
        added_at=float(fields.get("added_at", 0.0)),
        identity=fields.get("identity"),
    )


def _redacted(url: str) -> str:
    """``url`` without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


class RedisStore:
    """The Redis ``Store``; ``prefix`` namespaces every key (tests use a random one)."""

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.url = url
        self.prefix = prefix
        self._redis = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
            retry_on_error=list(_RECONNECT),
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=COMMAND_TIMEOUT,
        )
        self._add = self._redis.register_script(_ADD)
        self._remove = self._redis.register_script(_REMOVE)
        self._clear = self._redis.register_script(_CLEAR)
        self._update = self._redis.register_script(_UPDATE)
        self._record = self._redis.register_script(_RECORD)
        self._clear_cooldowns = self._redis.register_script(_CLEAR_COOLDOWNS)
        self._release = self._redis.register_script(_RELEASE)
        self._take_slot = self._redis.register_script(_TAKE_SLOT)
        self._renew_slots = self._redis.register_script(_RENEW_SLOTS)
        self._slots_held = self._redis.register_script(_SLOTS_HELD)

    def __repr__(self) -> str:
        return f"RedisStore({_redacted(self.url)!r}, prefix={self.prefix!r})"

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _acct(self, account_id: str) -> str:
        return self._key("acct", account_id)

    # --- the pool ------------------------------------------------------------

    @_OUTAGE.method
    async def add_accounts(self, accounts: Sequence[Account]) -> list[str]:
        """Insert new accounts in one atomic script; returns the ids added."""
        for account in accounts:
            check_account(account)
        if not accounts:
            return []
        now = time.time()
        unique = list({a.id: a for a in reversed(accounts)}.values())[::-1]  # first one wins
        keys = [self._key("accounts"), self._key("seq"), self._key("version")]
        keys += [self._key("merged"), *(self._acct(a.id) for a in unique)]
        # The identity is learnt, not given (``learn_identity``).
        fields = [_fields(dataclasses.replace(a, identity=None), now) for a in unique]
        args = [self._key(""), *(json.dumps(f) for f in fields)]
        added = await self._add(keys=keys, args=args)
        return [str(i) for i in added]

    @_OUTAGE.method
    async def get_account(self, account_id: str) -> Account | None:
        """One account (or the one a merged id names), or None."""
        fields = cast(dict[str, str], await self._redis.hgetall(self._acct(account_id)))
        if not fields:
            into = cast(str | None, await self._redis.hget(self._key("merged"), account_id))
            if into is None:
                return None
            fields = cast(dict[str, str], await self._redis.hgetall(self._acct(into)))
        return _account(fields) if fields else None

    @_OUTAGE.method
    async def account_with_identity(self, identity: str) -> Account | None:
        """The account whose identity is ``identity``, if any."""
        account_id = cast(str | None, await self._redis.hget(self._key("identities"), identity))
        if account_id is None:
            return None
        fields = cast(dict[str, str], await self._redis.hgetall(self._acct(account_id)))
        # The index may name an account removed since: it is not listed.
        return _account(fields) if fields.get("identity") == identity else None

    @_OUTAGE.method
    async def learn_identity(self, account_id: str, identity: str) -> Learnt | None:
        """Record ``account_id``'s identity; merge it with the account that has it already."""
        for _ in range(_WATCH_TRIES):
            try:
                return await self._learn(account_id, identity)
            except redis_errors.WatchError:
                await asyncio.sleep(random.uniform(*LOCK_POLL))
        raise StoreUnavailable(
            "The Redis store is too busy to merge two accounts right now; try again shortly."
        )

    async def _learn(self, account_id: str, identity: str) -> Learnt | None:
        identities, merged = self._key("identities"), self._key("merged")
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.watch(identities, merged, self._acct(account_id))
            own_id = account_id
            if not await pipe.exists(self._acct(account_id)):
                into = cast(str | None, await pipe.hget(merged, account_id))
                if into is None:
                    return None
                own_id = into
                await pipe.watch(self._acct(own_id))
            own = cast(dict[str, str], await pipe.hgetall(self._acct(own_id)))
            if not own:
                return None
            other_id = cast(str | None, await pipe.hget(identities, identity))
            other: dict[str, str] = {}
            if other_id is not None and other_id != own_id:
                await pipe.watch(self._acct(other_id), self._key("merged_into", own_id))
                await pipe.watch(self._key("merged_into", other_id))
                other = cast(dict[str, str], await pipe.hgetall(self._acct(other_id)))
            if not other:
                if own.get("identity") == identity and other_id == own_id:
                    return Learnt(own_id)
                pipe.multi()  # type: ignore[no-untyped-call]  # unannotated in redis-py
                pipe.hset(self._acct(own_id), "identity", identity)
                pipe.hset(identities, identity, own_id)
                await pipe.execute()
                return Learnt(own_id)
            assert other_id is not None
            own_seq = await pipe.zscore(self._key("accounts"), own_id)
            other_seq = await pipe.zscore(self._key("accounts"), other_id)
            own_first = (own_seq or 0.0) < (other_seq or 0.0)
            keep, drop = (own, other) if own_first else (other, own)
            keep_id, drop_id = keep["id"], drop["id"]
            aliases = cast(set[str], await pipe.smembers(self._key("merged_into", drop_id)))
            account = merge_accounts(_account(keep), _account(drop), identity)
            pipe.multi()  # type: ignore[no-untyped-call]  # unannotated in redis-py
            pipe.delete(self._acct(drop_id), self._acct(keep_id))
            # (hset's mapping type is invariant in its key: a dict[str, str] is one.)
            pipe.hset(self._acct(keep_id), mapping=cast(Any, _fields(account, account.added_at)))
            pipe.zrem(self._key("accounts"), drop_id)
            pipe.incr(self._key("version"))
            pipe.hset(identities, identity, keep_id)
            for alias in (*aliases, drop_id):
                pipe.hset(merged, alias, keep_id)
            pipe.sadd(self._key("merged_into", keep_id), *aliases, drop_id)
            pipe.delete(self._key("merged_into", drop_id))
            await pipe.execute()
            return Learnt(keep_id, drop_id)

    @_OUTAGE.method
    async def list_accounts(self) -> list[Account]:
        """Every account, oldest first."""
        ids = cast(list[str], await self._redis.zrange(self._key("accounts"), 0, -1))
        accounts = []
        for start in range(0, len(ids), _LIST_CHUNK):
            async with self._redis.pipeline(transaction=False) as pipe:
                for account_id in ids[start : start + _LIST_CHUNK]:
                    pipe.hgetall(self._acct(account_id))
                found = await pipe.execute()
            # An account removed between the two reads is simply not listed.
            accounts += [_account(fields) for fields in found if fields]
        return accounts

    @_OUTAGE.method
    async def account_ids(self) -> tuple[int, list[str]]:
        """``(version, ids oldest first)``, read in one MULTI."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self._key("version"))
            pipe.zrange(self._key("accounts"), 0, -1)
            version, ids = await pipe.execute()
        return int(version or 0), list(ids)

    @_OUTAGE.method
    async def version(self) -> int:
        """A number that changes whenever accounts are added or removed."""
        return int(await self._redis.get(self._key("version")) or 0)

    @_OUTAGE.method
    async def remove_account(self, account_id: str) -> bool:
        """Remove one account; False if there was none."""
        keys = [self._key("accounts"), self._key("version"), self._acct(account_id)]
        keys.append(self._key("identities"))
        return bool(await self._remove(keys=keys, args=[account_id]))

    @_OUTAGE.method
    async def clear_accounts(self) -> int:
        """Remove every account; returns how many there were."""
        keys = [self._key("accounts"), self._key("version")]
        keys += [self._key("identities"), self._key("merged")]
        args = [self._key("acct", ""), self._key("merged_into", "")]
        return int(await self._clear(keys=keys, args=args))

    # --- one account's state -------------------------------------------------

    async def _set(self, account_id: str, values: dict[str, float | str | None]) -> None:
        """Set (or, for None, delete) fields of an existing account in one step."""
        sets = [
            (k, repr(v) if isinstance(v, float) else v) for k, v in values.items() if v is not None
        ]
        deletes = [k for k, v in values.items() if v is None]
        args: list[str] = [str(len(sets))]
        for field, value in sets:
            args += [field, value]
        await self._update(keys=[self._acct(account_id)], args=args + deletes)

    @_OUTAGE.method
    async def set_status(
        self, account_id: str, status: AccountStatus, reason: str | None = None
    ) -> None:
        """Mark an account dead (with why) or active again (clears the reason)."""
        await self._set(
            account_id, {"status": status, "dead_reason": reason if status == "dead" else None}
        )

    @_OUTAGE.method
    async def set_cooldown(self, account_id: str, model: str, until: float) -> None:
        """Cool ``account_id`` for ``model`` (``"*"`` = every model) until ``until``."""
        await self._set(account_id, {_COOLDOWN + model: float(until)})

    @_OUTAGE.method
    async def clear_cooldowns(self, account_id: str) -> None:
        """Forget every cooldown of an account."""
        await self._clear_cooldowns(keys=[self._acct(account_id)])

    @_OUTAGE.method
    async def set_tokens(
        self,
        account_id: str,
        *,
        access_token: str | None,
        access_expires_at: float | None,
        secret: str | None = None,
        plan: str | None = None,
    ) -> None:
        """Store a fresh AccessToken (and a rotated RefreshToken in ``secret``)."""
        values: dict[str, float | str | None] = {
            "access_token": access_token,
            "access_expires_at": None if access_expires_at is None else float(access_expires_at),
        }
        if secret is not None:
            values["secret"] = secret
        if plan is not None:
            values["plan"] = plan
        await self._set(account_id, values)

    @_OUTAGE.method
    async def record_use(self, account_id: str, *, success: bool, at: float) -> None:
        """Count one success or failure and set ``last_used``."""
        field = "successes" if success else "failures"
        await self._record(keys=[self._acct(account_id)], args=[field, repr(float(at))])

    # --- records ---------------------------------------------------------------

    @_OUTAGE.method
    async def put_record(
        self, kind: str, key: str, value: dict[str, Any], ttl: float | None = None
    ) -> None:
        """Store (insert or replace) one JSON object; it expires after ``ttl`` s if given."""
        data = encode_record(kind, key, value, ttl)
        # Without px, SET also drops an expiry the replaced record had.
        px = None if ttl is None else max(1, round(ttl * 1000))
        await self._redis.set(self._key("rec", kind, key), data, px=px)

    @_OUTAGE.method
    async def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        """The object, or None if absent or expired."""
        check_record_id(kind, key)
        data = await self._redis.get(self._key("rec", kind, key))
        return None if data is None else decode_record(data)

    @_OUTAGE.method
    async def delete_record(self, kind: str, key: str) -> bool:
        """Remove it; True if it existed (an expired key no longer exists for Redis)."""
        check_record_id(kind, key)
        return bool(await self._redis.delete(self._key("rec", kind, key)))

    # --- coordination --------------------------------------------------------

    @_OUTAGE.method
    async def next_counter(self, name: str) -> int:
        """An ever-increasing shared counter: 1, 2, 3, …"""
        return int(await self._redis.incr(self._key("counter", name)))

    @_OUTAGE.method
    async def take_slot(self, account_id: str, lease: str, limit: int, ttl: float) -> bool:
        """Hold one of ``limit`` slots of ``account_id`` for ``ttl`` seconds; False if none."""
        ttl_ms = max(1, int(ttl * 1000))
        keys = [self._key("slots", account_id)]
        return bool(await self._take_slot(keys=keys, args=[lease, limit, ttl_ms]))

    @_OUTAGE.method
    async def renew_slots(self, held: Sequence[tuple[str, str]], ttl: float) -> None:
        """Move the expiry of each held ``(account_id, lease)`` to ``ttl`` from now."""
        if not held:
            return
        keys = [self._key("slots", account_id) for account_id, _ in held]
        args: list[str | int] = [max(1, int(ttl * 1000)), *(lease for _, lease in held)]
        await self._renew_slots(keys=keys, args=args)

    @_OUTAGE.method
    async def free_slot(self, account_id: str, lease: str) -> None:
        """Give the slot back."""
        await self._redis.zrem(self._key("slots", account_id), lease)

    @_OUTAGE.method
    async def slots_held(self, account_id: str) -> int:
        """Unexpired slots of ``account_id`` held now."""
        return int(await self._slots_held(keys=[self._key("slots", account_id)], args=[]))

    def lock(self, name: str, ttl: float) -> AbstractAsyncContextManager[bool]:
        """A lock shared by every client of this Redis, held at most ``ttl`` seconds."""
        return self._lock(name, ttl)

    @asynccontextmanager
    async def _lock(self, name: str, ttl: float) -> AsyncIterator[bool]:
        key = self._key("lock", name)
        owner = secrets.token_hex(8)
        ttl_ms = max(1, int(ttl * 1000))
        deadline = time.monotonic() + ttl
        with _OUTAGE:
            acquired = bool(await self._redis.set(key, owner, nx=True, px=ttl_ms))
            while not acquired and time.monotonic() < deadline:
                await asyncio.sleep(random.uniform(*LOCK_POLL))
                acquired = bool(await self._redis.set(key, owner, nx=True, px=ttl_ms))
        try:
            yield acquired
        finally:
            if acquired:
                with _OUTAGE:
                    await self._release(keys=[key], args=[owner])

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
