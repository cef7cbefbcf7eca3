"""Account sources for a request: the pool, or a RefreshToken the client brought."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time

from chat2api.errors import NoUsableAccount
from chat2api.pool.lease import FixedLease, Lease
from chat2api.pool.pool import REFRESH_MARGIN, AccountPool
from chat2api.upstream.auth import OAuthClient, RefreshRejected
from chat2api.values import Credentials

log = logging.getLogger(__name__)


class PoolAccounts:
    """The shared pool; with no account in it, the login-free flow (as the original).

    A pool this instance has served from that is now empty while the store's
    version is back at 0 was not emptied by anyone (removals count up): the
    store lost its data (Redis restarted without persistence). Pool codes
    then get a 503, not a silent switch to the login-free flow.
    """

    def __init__(self, pool: AccountPool) -> None:
        self.pool = pool
        self._served = False

    async def acquire(self, model: str, exclude: frozenset[str]) -> Lease:
        if await self.pool.size() == 0:
            if self._served and await self.pool.store.version() == 0:
                log.warning("the store holds no accounts any more: it lost its data")
                raise NoUsableAccount(
                    "The account pool's store lost its accounts (restarted empty?): add them "
                    "again. Pool keys are not switched to the login-free flow meanwhile.",
                    code="pool_lost",
                )
            return FixedLease(Credentials())
        self._served = True
        return await self.pool.acquire(model, exclude)


class PinnedPoolAccount:
    """One given pool account: where an earlier conversation lives."""

    def __init__(self, pool: AccountPool, account_id: str) -> None:
        self.pool = pool
        self.account_id = account_id

    async def acquire(self, model: str, exclude: frozenset[str]) -> Lease:
        if self.account_id in exclude:
            raise NoUsableAccount("The account holding this conversation failed.")
        lease = await self.pool.acquire_account(self.account_id, model)
        self.account_id = lease.key  # an id since merged into another: that one
        return lease


class RefreshCache:
    """AccessTokens for client-supplied RefreshTokens, kept until they expire.

    Keyed by a hash of the RefreshToken (the token itself is not kept as a
    key); one exchange per RefreshToken however many requests need it. A
    refusal is remembered for ``REFUSAL_SECONDS``: a client repeating a bad
    key does not make the OAuth endpoint answer it again each time.
    """

    REFUSAL_SECONDS = 300.0

    def __init__(self, oauth: OAuthClient, max_entries: int = 10_000) -> None:
        self._oauth = oauth
        self._max = max_entries
        self._tokens: dict[str, tuple[str, float]] = {}
        self._refused: dict[str, tuple[RefreshRejected, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def access_token(self, refresh_token: str) -> str:
        key = hashlib.sha256(refresh_token.encode()).hexdigest()
        refused = self._refused.get(key)
        if refused is not None:
            if refused[1] > time.monotonic():
                raise refused[0]
            del self._refused[key]
        cached = self._tokens.get(key)
        if cached is not None and cached[1] - REFRESH_MARGIN > time.time():
            return cached[0]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(key)
            if cached is not None and cached[1] - REFRESH_MARGIN > time.time():
                return cached[0]
            try:
                grant = await self._oauth.refresh(refresh_token)
            except RefreshRejected as exc:
                if len(self._refused) >= self._max:
                    self._refused.pop(next(iter(self._refused)))
                self._refused[key] = (exc, time.monotonic() + self.REFUSAL_SECONDS)
                self._locks.pop(key, None)
                raise
            if len(self._tokens) >= self._max:
                self._tokens.pop(next(iter(self._tokens)))
            self._tokens[key] = (grant.access_token, time.time() + grant.expires_in)
        self._locks.pop(key, None)
        return grant.access_token


class ClientRefreshToken:
    """A RefreshToken sent as the request's key: exchanged, then used as given."""

    def __init__(self, cache: RefreshCache, refresh_token: str, workspace: str | None) -> None:
        self._cache = cache
        self._refresh_token = refresh_token
        self._workspace = workspace

    async def ready(self) -> None:
        """Exchange the token now (cached): a refused one raises ``RefreshRejected`` (401)."""
        await self._cache.access_token(self._refresh_token)

    async def acquire(self, model: str, exclude: frozenset[str]) -> Lease:
        token = await self._cache.access_token(self._refresh_token)
        return FixedLease(Credentials(token, self._workspace))
