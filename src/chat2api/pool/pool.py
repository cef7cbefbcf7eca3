"""The account pool: selection, per-account limits, cooldowns, dead marks, refresh.

Selection reads only what it needs from the store: the id list (re-read
when the store's ``version`` changes), one shared round-robin counter, and
the record of each candidate looked at. Cooldowns and dead marks therefore
come from the store on every pick, so several instances sharing one store
skip an account another instance cooled down.

The per-account limit on concurrent conversations holds across workers and
instances: each conversation holds a slot leased in the store
(``pool.slots``); requests over the limit wait (``wait_seconds`` at most).

A refresh is single-flight twice over: an in-process lock per account, and
the store's lock across instances; whoever gets it second re-reads the
account and finds the fresh AccessToken already there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from chat2api.errors import (
    ChallengeRequired,
    NoUsableAccount,
    PoolBusy,
    StoreUnavailable,
    UpstreamError,
    UpstreamModelUnavailable,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnauthorized,
)
from chat2api.pool.jwt import identity_key, token_expiry, token_plan
from chat2api.pool.slots import SharedSlots
from chat2api.pool.tokens import GivenToken
from chat2api.settings import Settings
from chat2api.store.base import Account, Learnt, Store, account_key
from chat2api.store.seeds import rebind_seeds
from chat2api.upstream.auth import OAuthClient, RefreshRejected
from chat2api.values import Credentials

log = logging.getLogger(__name__)

SCAN_LIMIT = 64  # candidates looked at one by one before one bulk read
REFRESH_MARGIN = 300.0  # refresh an AccessToken this many seconds before it expires
REFRESH_LOCK_TTL = 60.0
SLOT_POLL = (0.1, 0.3)  # seconds between looks for a slot another process may have freed


class Clock(Protocol):
    def time(self) -> float: ...


class SystemClock:
    def time(self) -> float:
        return time.time()


@dataclass(frozen=True, slots=True)
class PoolOptions:
    concurrency: int = 1
    wait_seconds: float = 30.0
    random_order: bool = False
    enable_limit: bool = True
    default_cooldown: float = 60.0
    slot_ttl: float = 30.0


def pool_options(settings: Settings) -> PoolOptions:
    """The pool's options from the settings."""
    return PoolOptions(
        concurrency=settings.account_concurrency,
        wait_seconds=settings.pool_wait_seconds,
        random_order=settings.random_token,
        enable_limit=settings.enable_limit,
        default_cooldown=settings.cooldown_seconds,
        slot_ttl=settings.slot_lease_seconds,
    )


class _WriteOrLog:
    """Go on without a store write that only records what happened (with a warning)."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> bool:
        if isinstance(exc, StoreUnavailable):
            log.warning("store write skipped (%s): %s", self.what, exc.message)
            return True
        return False


class PoolLease:
    """One pool account held for one conversation."""

    def __init__(
        self,
        pool: AccountPool,
        account: Account,
        credentials: Credentials,
        model: str,
        slot: str,
        slot_account: str | None = None,
    ) -> None:
        self._pool = pool
        self._slot = slot
        # The slot's account: another one when the refresh that made these
        # credentials merged the account leased into ``account``.
        self._slot_account = slot_account or account.id
        self.account = account
        self.key = account.id
        self.credentials = credentials
        self.model = model
        self.retry_same = False  # set when a refresh makes this account worth another try
        self._released = False

    async def succeeded(self) -> None:
        # Only a statistic: an answer already given stands when the store cannot count it.
        with _WriteOrLog("record_use"):
            await self._pool.store.record_use(self.key, success=True, at=self._pool.clock.time())

    async def failed(self, exc: UpstreamError) -> bool:
        return await self._pool.report_failure(self, exc)

    async def release(self) -> None:
        if not self._released:
            self._released = True
            await self._pool.release_slot(self._slot_account, self._slot)


class AccountPool:
    """Hands out pool accounts (see module docstring)."""

    def __init__(
        self,
        store: Store,
        oauth: OAuthClient,
        options: PoolOptions | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.oauth = oauth
        self.options = options or PoolOptions()
        self.clock: Clock = clock or SystemClock()
        self._ids: list[str] = []
        self._version: int | None = None
        self.slots = SharedSlots(store, self.options.concurrency, self.options.slot_ttl)
        self._freed = asyncio.Condition()
        self._refresh_locks: dict[str, asyncio.Lock] = {}
        self._refreshed_for_401: dict[str, float] = {}
        self._local_turn = 0  # the rotation while the store cannot count (disk full)

    # ------------------------------------------------------------- accounts

    async def add_tokens(self, tokens: list[GivenToken]) -> list[str]:
        """Store new accounts for the given tokens (one transaction); returns ids added.

        A token of an account already in the pool (same ChatGPT account and
        user in its JWT) updates that account instead (``add_or_update``).
        """
        added, _ = await self.add_or_update(tokens)
        return added

    async def add_or_update(self, tokens: list[GivenToken]) -> tuple[list[str], list[str]]:
        """(ids added, the account id of each given token in order).

        An AccessToken whose identity (``chatgpt_account_id`` + user id, in
        its workspace) is that of an account in the pool, or of an earlier
        token of the same call, is not a new account: it gives that account
        its AccessToken when it expires later than the one held (and brings
        a dead account back, since a new login is what fixes one). A new
        account's identity is then recorded (``learn_identity``): one added
        meanwhile by another process for the same ChatGPT account is merged
        with it. A RefreshToken's identity is known after its first exchange.
        """
        now = self.clock.time()
        accounts: dict[str, Account] = {}
        seen: dict[str, Account] = {}  # identity → its account, in the pool or in this call
        learn: dict[str, str] = {}  # new account id → its identity
        ids: list[str] = []
        for given in tokens:
            if given.kind == "other":
                raise ValueError("only AccessTokens and RefreshTokens can join the pool")
            identity = (
                identity_key(given.token, given.workspace) if given.kind == "access_token" else None
            )
            same = None
            if identity is not None:
                same = seen.get(identity) or await self.store.account_with_identity(identity)
            if identity is not None and same is not None:
                seen[identity] = same
                ids.append(same.id)
                if same.id in accounts:  # an earlier token of this call: keep the fresher
                    _take_fresher(same, given.token)
                else:
                    await self._update_access(same, given.token)
                continue
            account = Account(
                id=account_key(given.token, given.workspace),
                kind=given.kind,
                secret=given.token,
                workspace=given.workspace,
                added_at=now,
            )
            if given.kind == "access_token":
                account.access_token = given.token
                account.access_expires_at = token_expiry(given.token)
                account.plan = token_plan(given.token)
            ids.append(account.id)
            accounts.setdefault(account.id, account)
            if identity is not None:
                seen[identity] = accounts[account.id]
                learn[account.id] = identity
        added = await self.store.add_accounts(list(accounts.values()))
        now_named: dict[str, str] = {}
        for account_id, identity in learn.items():
            learnt = await self.learn_identity(account_id, identity)
            if learnt is not None and learnt.id != account_id:
                now_named[account_id] = learnt.id
        added = [i for i in added if i not in now_named]
        return added, [now_named.get(i, i) for i in ids]

    async def learn_identity(self, account_id: str, identity: str) -> Learnt | None:
        """Record which ChatGPT account ``account_id`` is; merged with its twin if any.

        After a merge, the gateway's seeds bound to the dropped id are bound to
        the survivor (they would reach it through the alias anyway).
        """
        learnt = await self.store.learn_identity(account_id, identity)
        if learnt is not None and learnt.merged is not None:
            log.info(
                "accounts %s and %s are one ChatGPT account: merged into %s",
                learnt.id,
                learnt.merged,
                learnt.id,
            )
            await rebind_seeds(self.store, learnt.merged, learnt.id)
        return learnt

    async def learn_identities(self) -> int:
        """Learn the identity of each account whose AccessToken tells one the store lacks.

        For accounts stored before identities were recorded (and any whose
        recording a crash cut short); duplicates among them are merged.
        Returns how many were recorded.
        """
        learnt = 0
        for account in await self.store.list_accounts():
            if account.identity is not None or not account.access_token:
                continue
            identity = identity_key(account.access_token, account.workspace)
            if identity is not None:
                await self.learn_identity(account.id, identity)
                learnt += 1
        return learnt

    async def _update_access(self, account: Account, token: str) -> None:
        expires = token_expiry(token)
        held = account.access_expires_at
        if expires is not None and held is not None and expires <= held:
            return  # the account already holds a token that lasts as long
        await self.store.set_tokens(
            account.id,
            access_token=token,
            access_expires_at=expires,
            secret=token if account.kind == "access_token" else None,
            plan=token_plan(token),
        )
        account.access_token, account.access_expires_at = token, expires
        if account.status == "dead":
            await self.store.set_status(account.id, "active")
            account.status = "active"
        log.info("account %s: a newer AccessToken of the same account replaced its own", account.id)

    async def size(self) -> int:
        """How many accounts the pool has (dead ones included)."""
        return len(await self._account_ids())

    async def _account_ids(self) -> list[str]:
        version = await self.store.version()
        if version != self._version:
            self._version, self._ids = await self.store.account_ids()
        return self._ids

    # ------------------------------------------------------------ selection

    async def acquire(self, model: str, exclude: frozenset[str] = frozenset()) -> PoolLease:
        """A lease on a usable account for ``model``; waits while all are busy."""
        deadline = self.clock.time() + self.options.wait_seconds
        reread = True
        while True:
            lease, soonest, busy = await self._try_acquire(model, exclude)
            if lease is not None:
                return lease
            if reread and self._version is None:  # the id list was stale: once more
                reread = False
                continue
            if busy:
                remaining = deadline - self.clock.time()
                if remaining <= 0:
                    raise PoolBusy(
                        "Every usable account is serving its limit of conversations; "
                        "try again shortly."
                    )
                await self._wait_freed(remaining)
                continue
            if soonest is not None:
                wait = max(1.0, soonest - self.clock.time())
                raise UpstreamRateLimited(
                    f"Every account of the pool is cooling down after a rate limit for {model}.",
                    retry_after=wait,
                    code="all_accounts_cooling",
                )
            raise NoUsableAccount(
                "No usable account: the pool is empty or every account is dead "
                "(see the token page or `chat2api tokens list`)."
            )

    async def acquire_account(self, account_id: str, model: str) -> PoolLease:
        """A lease on one given account (to continue a conversation that lives on it)."""
        deadline = self.clock.time() + self.options.wait_seconds
        while True:
            account = await self.store.get_account(account_id)
            lease, until, busy = await self._take(account, model)
            if lease is not None:
                return lease
            if not busy:
                break
            remaining = deadline - self.clock.time()
            if remaining <= 0:
                raise PoolBusy("The account holding this conversation is busy; try again shortly.")
            await self._wait_freed(remaining)
        if until is not None:
            raise UpstreamRateLimited(
                "The account holding this conversation is cooling down.",
                retry_after=max(1.0, until - self.clock.time()),
            )
        raise NoUsableAccount("The account holding this conversation is gone or dead.")

    async def _wait_freed(self, remaining: float) -> None:
        """Until a slot is freed here, or a short while (another process may free one)."""
        timeout = min(remaining, random.uniform(*SLOT_POLL))
        async with self._freed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), timeout=timeout)

    async def _try_acquire(
        self, model: str, exclude: frozenset[str]
    ) -> tuple[PoolLease | None, float | None, bool]:
        ids = await self._account_ids()
        if not ids:
            return None, None, False
        n = len(ids)
        if self.options.random_order:
            order = random.sample(range(n), min(n, SCAN_LIMIT))
        else:
            start = await self._next_turn() - 1
            order = [(start + i) % n for i in range(min(n, SCAN_LIMIT))]
        soonest: float | None = None
        busy = False
        for index in order:
            account_id = ids[index]
            if account_id in exclude:
                continue
            if self.slots.full_here(account_id):
                busy = True
                continue
            account = await self.store.get_account(account_id)
            if account is None:
                # Listed but gone: the list is stale (a store that lost its
                # data and got new accounts since has the same version again).
                self._version = None
            lease, until, taken = await self._take(account, model)
            busy = busy or taken
            if lease is not None:
                return lease, None, False
            if until is not None:
                soonest = until if soonest is None else min(soonest, until)
        if n > SCAN_LIMIT:
            # A large pool where the first candidates were unusable: one bulk read.
            for account in await self.store.list_accounts():
                if account.id in exclude:
                    continue
                if self.slots.full_here(account.id):
                    busy = busy or account.status == "active"
                    continue
                lease, until, taken = await self._take(account, model)
                busy = busy or taken
                if lease is not None:
                    return lease, None, False
                if until is not None:
                    soonest = until if soonest is None else min(soonest, until)
        return None, soonest, busy

    async def _next_turn(self) -> int:
        """The shared rotation counter; a local one while the store cannot write it.

        Choosing an account must not depend on a write: with the disk full
        the pool goes on serving, in this instance's own order.
        """
        try:
            turn = await self.store.next_counter("round-robin")
        except StoreUnavailable as exc:
            self._local_turn += 1
            if self._local_turn == 1 or self._local_turn % 1000 == 0:
                log.warning("rotating accounts locally: %s", exc.message)
            return self._local_turn
        self._local_turn = turn
        return turn

    async def _take(
        self, account: Account | None, model: str
    ) -> tuple[PoolLease | None, float | None, bool]:
        """Lease ``account`` if usable now; else when its cooldown ends, or that it is busy."""
        if account is None or account.status == "dead":
            return None, None, False
        now = self.clock.time()
        until = account.cooling_until(model, now) if self.options.enable_limit else None
        if until is not None:
            return None, until, False
        slot = await self.slots.take(account.id)
        if slot is None:
            return None, None, True
        try:
            current = await self._current(account)
        except RefreshRejected:
            await self.release_slot(account.id, slot)
            return None, None, False
        except BaseException:
            await self.release_slot(account.id, slot)
            raise
        # After a merge the lease (its outcome, its cooldowns) is the survivor's;
        # the slot stays where it was taken, until this lease ends.
        credentials = Credentials(
            current.access_token or current.secret, current.workspace, key=current.id
        )
        return PoolLease(self, current, credentials, model, slot, account.id), None, False

    async def release_slot(self, account_id: str, slot: str) -> None:
        """Free one concurrency slot and wake a waiting request."""
        await self.slots.free(account_id, slot)
        async with self._freed:
            self._freed.notify(1)

    # -------------------------------------------------------------- refresh

    def _fresh(self, account: Account) -> bool:
        if account.access_token is None:
            return False
        expires = account.access_expires_at
        return expires is None or expires - REFRESH_MARGIN > self.clock.time()

    async def _current(self, account: Account) -> Account:
        """``account`` with a usable AccessToken: refreshed if needed (and maybe merged)."""
        if account.kind == "refresh_token" and not self._fresh(account):
            account = await self.refresh(account.id, stale=account.access_token)
        return account

    async def refresh(self, account_id: str, *, stale: str | None = None) -> Account:
        """A fresh AccessToken for a RefreshToken account, exchanged at most once.

        ``stale`` is the AccessToken the caller found wanting (expired, or
        refused with 401): if the store already holds a different, fresh one,
        no exchange happens. Raises ``RefreshRejected`` (the account is then
        marked dead) or a transport error.
        """
        lock = self._refresh_locks.setdefault(account_id, asyncio.Lock())
        async with lock:
            account = await self.store.get_account(account_id)
            if account is None:
                raise NoUsableAccount("The account was removed.")
            account_id = account.id  # an id merged into another reads as that one
            if account.kind != "refresh_token":
                return account
            if account.access_token != stale and self._fresh(account):
                return account
            async with self.store.lock(f"refresh:{account_id}", REFRESH_LOCK_TTL):
                account = await self.store.get_account(account_id) or account
                if account.access_token != stale and self._fresh(account):
                    return account
                try:
                    grant = await self.oauth.refresh(account.secret, key=account.id)
                except RefreshRejected as exc:
                    await self.store.set_status(account_id, "dead", exc.message)
                    log.warning("account %s is dead: %s", account_id, exc.message)
                    raise
                await self.store.set_tokens(
                    account_id,
                    access_token=grant.access_token,
                    access_expires_at=self.clock.time() + grant.expires_in,
                    secret=grant.refresh_token,
                    plan=token_plan(grant.access_token),
                )
                log.info("refreshed account %s", account_id)
                # Now its identity is known: the account may be one already in the pool.
                identity = identity_key(grant.access_token, account.workspace)
                if identity is not None:
                    learnt = await self.learn_identity(account_id, identity)
                    account_id = learnt.id if learnt is not None else account_id
                return await self.store.get_account(account_id) or account

    async def refresh_all(
        self,
        *,
        due_only: bool = False,
        progress: Callable[[Account, str | None], Awaitable[None] | None] | None = None,
    ) -> dict[str, str | None]:
        """Refresh every RefreshToken account (or only those due); id → error or None."""
        results: dict[str, str | None] = {}
        for account in await self.store.list_accounts():
            if account.kind != "refresh_token" or account.status == "dead":
                continue
            if due_only and self._fresh_for(account, REFRESH_DUE):
                continue
            error: str | None = None
            try:
                await self.refresh(account.id, stale=account.access_token)
            except UpstreamError as exc:
                error = exc.message
            results[account.id] = error
            if progress is not None:
                maybe = progress(account, error)
                if maybe is not None:
                    await maybe
        return results

    def _fresh_for(self, account: Account, seconds: float) -> bool:
        expires = account.access_expires_at
        return account.access_token is not None and (
            expires is None or expires - seconds > self.clock.time()
        )

    # -------------------------------------------------------------- outcome

    async def report_failure(self, lease: PoolLease, exc: UpstreamError) -> bool:
        """Record what ``exc`` says about the account; True when retrying may help."""
        now = self.clock.time()
        account = lease.account
        if isinstance(exc, UpstreamModelUnavailable):
            return True  # not the account's fault: another account may have the model
        with _WriteOrLog("record_use"):
            await self.store.record_use(account.id, success=False, at=now)
        if isinstance(exc, UpstreamRateLimited):
            if self.options.enable_limit:
                wait = exc.retry_after or self.options.default_cooldown
                with _WriteOrLog("set_cooldown"):
                    await self.store.set_cooldown(account.id, lease.model, now + wait)
                log.info("account %s cools down for %s: %.0fs", account.id, lease.model, wait)
            return True
        if isinstance(exc, UpstreamUnauthorized):
            recent = self._refreshed_for_401.get(account.id)
            if account.kind == "refresh_token" and (recent is None or now - recent > 60):
                self._refreshed_for_401[account.id] = now
                try:
                    await self.refresh(account.id, stale=lease.credentials.access_token)
                except UpstreamError:
                    return True
                lease.retry_same = True
                return True
            await self.store.set_status(account.id, "dead", f"access token refused: {exc.message}")
            log.warning("account %s is dead: access token refused", account.id)
            return True
        if isinstance(exc, ChallengeRequired | UpstreamRejected):
            return False
        return exc.retryable


def _take_fresher(account: Account, token: str) -> None:
    """Give a not yet stored AccessToken account ``token`` if it expires later."""
    expires = token_expiry(token)
    held = account.access_expires_at
    if held is None or (expires is not None and expires > held):
        account.access_token = account.secret = token
        account.access_expires_at = expires
        account.plan = token_plan(token)


REFRESH_DUE = 5 * 86400.0  # scheduled refresh: AccessTokens with less than 5 days left
