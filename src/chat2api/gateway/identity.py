"""Who a gateway browser is: logins, sessions and seeds, all kept in the store.

A login is an AccessToken, a RefreshToken, or a *seed* (any other string:
a name handed out by whoever runs the gateway). A seed stands for one
account: a pool account (bound on first use when ``AUTO_SEED`` is on, to the
account with the fewest seeds, so seeds spread evenly) or a token bound by
the admin API.

Records (shared by every instance on the store, kept across restarts):

* ``seed/<seed>`` → ``{"account_id"}`` or ``{"token", "token_kind",
  "workspace"}``, and ``created``;
* ``gateway/seeds`` → ``{"seeds": {seed: account_id | null}}``, the index the
  admin list and the even spread read (written under a store lock);
* ``gateway_session/<random id>`` → ``{"seed"}`` or ``{"token",
  "token_kind", "workspace"}``, and ``created``. The browser's cookie holds
  only the id; tokens stay on the server.
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass
from typing import Any

from chat2api.errors import Chat2APIError, NoUsableAccount, UpstreamError
from chat2api.pool.pool import REFRESH_MARGIN, AccountPool, PoolLease
from chat2api.pool.sources import RefreshCache
from chat2api.pool.tokens import parse_token, token_problem
from chat2api.state import AppState
from chat2api.store.base import Account, Store
from chat2api.store.seeds import INDEX_KEY, INDEX_KIND, INDEX_LOCK_TTL, SEED, put_seed
from chat2api.values import Credentials

SESSION = "gateway_session"
SESSION_TTL = 30 * 86400.0
MAX_SEED_LENGTH = 256


class LoginRefused(Chat2APIError):
    """The login page's error: the token or seed cannot be used."""

    status_code = 401
    error_type = "invalid_request_error"
    default_code = "gateway_login_refused"


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in browser: a seed, or a token of its own (never sent back to it)."""

    id: str
    created: float
    seed: str | None = None
    token: str | None = None
    token_kind: str | None = None
    workspace: str | None = None

    @property
    def name(self) -> str:
        return self.seed if self.seed is not None else "chat2api"

    def record(self) -> dict[str, Any]:
        if self.seed is not None:
            return {"seed": self.seed, "created": self.created}
        return {
            "token": self.token,
            "token_kind": self.token_kind,
            "workspace": self.workspace,
            "created": self.created,
        }


class Identities:
    """Logins, sessions and seed bindings over the app's store and pool."""

    def __init__(self, state: AppState) -> None:
        self.store: Store = state.store
        self.pool: AccountPool = state.pool
        self.refresh_cache: RefreshCache = state.refresh_cache
        self.auto_seed = state.settings.auto_seed

    # ------------------------------------------------------------- sessions

    async def login(self, value: str) -> Session:
        """A new session for what the login form or ``/?token=`` gave; ``LoginRefused``."""
        value = value.strip()
        if not value:
            raise LoginRefused("Enter a RefreshToken, an AccessToken or a seed.")
        given = parse_token(value)
        now = time.time()
        sid = secrets.token_urlsafe(32)
        if given.kind == "other":
            if len(value) > MAX_SEED_LENGTH or not value.isprintable():
                raise LoginRefused("A seed is at most 256 printable characters.")
            await self.seed_binding(value)  # binds it now, or refuses it
            session = Session(sid, now, seed=value)
        else:
            if given.kind == "refresh_token":
                try:
                    await self.refresh_cache.access_token(given.token)
                except UpstreamError as exc:
                    raise LoginRefused(f"The RefreshToken did not work: {exc.message}") from exc
            session = Session(
                sid, now, token=given.token, token_kind=given.kind, workspace=given.workspace
            )
        await self.store.put_record(SESSION, sid, session.record(), ttl=SESSION_TTL)
        return session

    async def session(self, sid: str | None) -> Session | None:
        """The session behind a cookie value, or None."""
        if not sid or len(sid) > 100:
            return None
        data = await self.store.get_record(SESSION, sid)
        if data is None:
            return None
        return Session(
            sid,
            float(data.get("created", 0.0)),
            seed=data.get("seed"),
            token=data.get("token"),
            token_kind=data.get("token_kind"),
            workspace=data.get("workspace"),
        )

    async def logout(self, sid: str) -> None:
        await self.store.delete_record(SESSION, sid)

    # ---------------------------------------------------------------- seeds

    async def seed_binding(self, seed: str) -> dict[str, Any]:
        """The seed's record, binding an unknown seed to a pool account if allowed."""
        found = await self.store.get_record(SEED, seed)
        if found is not None and await self._usable(found):
            return await self._current(seed, found)
        if found is None and not self.auto_seed:
            raise LoginRefused("Unknown seed: ask the gateway's administrator for yours.")
        # A seed registered with an empty token (Chat-Share) takes any pool account.
        if found is not None and not (self.auto_seed or found.get("any_account")):
            raise NoUsableAccount("The account bound to this seed is gone or dead.")
        async with self.store.lock("gateway-seeds", INDEX_LOCK_TTL):
            found = await self.store.get_record(SEED, seed)
            if found is not None and await self._usable(found):
                return found
            index = await self._index()
            account_id = await self._least_bound(index)
            record = {"account_id": account_id, "created": time.time()}
            if found is not None and found.get("any_account"):
                record["any_account"] = True  # re-chosen when this account dies
            await self.store.put_record(SEED, seed, record)
            index[seed] = account_id
            await self._save_index(index)
        return record

    async def bind_seed(
        self, seed: str, *, account_id: str | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """Bind ``seed`` to a pool account or to a token (admin API); the record."""
        record: dict[str, Any] = {"created": time.time()}
        if account_id is not None:
            account = await self.store.get_account(account_id)
            if account is None:
                raise NoUsableAccount(f"No pool account has the id {account_id!r}.")
            record["account_id"] = account.id  # an id merged into another: that one
        elif token is not None:
            given = parse_token(token)
            problem = token_problem(given)
            if problem is not None:
                raise LoginRefused(f"The token is {problem}.")
            record |= {"token": given.token, "token_kind": given.kind, "workspace": given.workspace}
        await put_seed(self.store, seed, record)
        return record

    async def register_seed(self, seed: str) -> dict[str, Any]:
        """Register ``seed`` for any pool account, chosen at its first login (evenly)."""
        record: dict[str, Any] = {"any_account": True, "created": time.time()}
        await put_seed(self.store, seed, record)
        return record

    async def clear_seeds(self) -> int:
        """Forget every seed; how many there were."""
        async with self.store.lock("gateway-seeds", INDEX_LOCK_TTL):
            index = await self._index()
            for seed in index:
                await self.store.delete_record(SEED, seed)
            await self._save_index({})
        return len(index)

    async def unbind_seed(self, seed: str) -> bool:
        """Forget a seed; True if it existed."""
        async with self.store.lock("gateway-seeds", INDEX_LOCK_TTL):
            existed = await self.store.delete_record(SEED, seed)
            index = await self._index()
            if index.pop(seed, None) is not None or existed:
                await self._save_index(index)
        return existed

    async def seeds(self) -> dict[str, dict[str, Any]]:
        """Every seed's record, by seed."""
        out = {}
        for seed in await self._index():
            record = await self.store.get_record(SEED, seed)
            if record is not None:
                out[seed] = record
        return out

    async def _current(self, seed: str, record: dict[str, Any]) -> dict[str, Any]:
        """``record``, bound to the account its account was merged into, if it was.

        The pool rebinds seeds after a merge; this catches one it missed (the
        process died in between).
        """
        account_id = record.get("account_id")
        if account_id is None:
            return record
        account = await self.store.get_account(account_id)
        if account is None or account.id == account_id:
            return record
        record = record | {"account_id": account.id}
        await put_seed(self.store, seed, record)
        return record

    async def _usable(self, record: dict[str, Any]) -> bool:
        account_id = record.get("account_id")
        if account_id is None:
            return bool(record.get("token"))
        account = await self.store.get_account(account_id)
        return account is not None and account.status == "active"

    async def _index(self) -> dict[str, str | None]:
        data = await self.store.get_record(INDEX_KIND, INDEX_KEY)
        seeds = data.get("seeds", {}) if data else {}
        return dict(seeds) if isinstance(seeds, dict) else {}

    async def _save_index(self, index: dict[str, str | None]) -> None:
        await self.store.put_record(INDEX_KIND, INDEX_KEY, {"seeds": index})

    async def _least_bound(self, index: dict[str, str | None]) -> str:
        active = [a.id for a in await self.store.list_accounts() if a.status == "active"]
        if not active:
            raise LoginRefused("The gateway's account pool has no usable account.")
        counts = dict.fromkeys(active, 0)
        for bound in index.values():
            if bound in counts:
                counts[bound] += 1
        fewest = min(counts.values())
        return random.choice([a for a, n in counts.items() if n == fewest])

    # ------------------------------------------------------------- accounts

    async def credentials(self, session: Session) -> tuple[Credentials, str | None]:
        """The session's upstream credentials and, for a pool account, its id."""
        if session.seed is not None:
            record = await self.seed_binding(session.seed)
            if record.get("account_id") is None:
                return await self._token_credentials(
                    record["token"], record.get("token_kind"), record.get("workspace")
                ), None
            account_id = str(record["account_id"])
            return await self._pool_credentials(account_id), account_id
        assert session.token is not None
        return await self._token_credentials(
            session.token, session.token_kind, session.workspace
        ), None

    async def lease(self, account_id: str, model: str) -> PoolLease:
        """A concurrency slot on a pool account, for one conversation."""
        return await self.pool.acquire_account(account_id, model)

    async def _token_credentials(
        self, token: str, kind: str | None, workspace: str | None
    ) -> Credentials:
        if kind == "refresh_token":
            token = await self.refresh_cache.access_token(token)
        return Credentials(token, workspace)

    async def _pool_credentials(self, account_id: str) -> Credentials:
        account: Account | None = await self.store.get_account(account_id)
        if account is None or account.status == "dead":
            raise NoUsableAccount("The account bound to this login is gone or dead.")
        expires = account.access_expires_at
        stale = account.access_token is None or (
            expires is not None and expires - REFRESH_MARGIN <= time.time()
        )
        if account.kind == "refresh_token" and stale:
            account = await self.pool.refresh(account.id, stale=account.access_token)
        return Credentials(
            account.access_token or account.secret, account.workspace, key=account.id
        )
