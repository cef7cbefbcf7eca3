"""What the token page, the admin API and ``chat2api tokens`` do to the pool.

Plain async functions over an ``AccountPool`` and its ``Store``, so the
HTTP routes and the CLI only parse input and format output. Views of an
account carry its id and fingerprint, never its secret or AccessToken.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from chat2api.errors import InvalidRequest, UpstreamError
from chat2api.pool.pool import REFRESH_DUE, AccountPool
from chat2api.pool.tokens import (
    GivenToken,
    TokenListError,
    parse_token,
    parse_token_lines,
    token_problem,
)
from chat2api.settings import Settings
from chat2api.startup import shown_url
from chat2api.store.base import Account, Store
from chat2api.upstream.http import sticky_choice, sticky_proxy
from chat2api.values import Credentials

AccountState = Literal["active", "cooling", "dead"]
RefreshStatus = Literal["refreshed", "failed"]


class AccountNotFound(InvalidRequest):
    """No account has the id (or fingerprint) given."""

    status_code = 404
    default_code = "account_not_found"


def cooldown_end(account: Account, now: float) -> float | None:
    """The latest cooldown still in the future, whatever the model."""
    ends = [until for until in account.cooldowns.values() if until > now]
    return max(ends) if ends else None


def account_state(account: Account, now: float) -> AccountState:
    """``dead``, ``cooling`` (for at least one model) or ``active``."""
    if account.status == "dead":
        return "dead"
    return "cooling" if cooldown_end(account, now) is not None else "active"


def account_view(account: Account, now: float, settings: Settings | None = None) -> dict[str, Any]:
    """What a person may see of an account: no secret, no AccessToken.

    With ``settings``, also the browser identity the account keeps for life:
    its proxy of PROXY_URL (session id and credentials as a fingerprint), its
    user agent of USER_AGENTS, its IMPERSONATE target, its device id.
    """
    view: dict[str, Any] = {
        "id": account.id,
        "fingerprint": account.fingerprint,
        "kind": account.kind,
        "workspace": account.workspace,
        "plan": account.plan,
        "state": account_state(account, now),
        "dead_reason": account.dead_reason,
        "cooldown_until": cooldown_end(account, now),
        "cooldowns": {model: t for model, t in sorted(account.cooldowns.items()) if t > now},
        "access_expires_at": account.access_expires_at,
        "last_used": account.last_used,
        "successes": account.successes,
        "failures": account.failures,
        "added_at": account.added_at,
        "device_id": Credentials("-", key=account.id).device_id,
    }
    if settings is not None:
        proxies, agents = settings.proxy_url, settings.user_agents
        view["proxy"] = shown_url(sticky_proxy(proxies, account.id)) if proxies else None
        view["user_agent"] = sticky_choice(agents, account.id, "user-agent") if agents else None
        browsers = settings.impersonate_list
        view["impersonate"] = (
            sticky_choice(browsers, account.id, "impersonate") if len(browsers) > 1 else browsers[0]
        )
    return view


def state_counts(accounts: list[Account], now: float) -> dict[str, int]:
    """How many accounts are active, cooling and dead, and the total."""
    counts = {"active": 0, "cooling": 0, "dead": 0}
    for account in accounts:
        counts[account_state(account, now)] += 1
    return counts | {"total": len(accounts)}


async def accounts_overview(
    store: Store, now: float | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """Counts by state and the view of every account, oldest first."""
    now = time.time() if now is None else now
    accounts = await store.list_accounts()
    return {
        "counts": state_counts(accounts, now),
        "accounts": [account_view(account, now, settings) for account in accounts],
    }


@dataclass(frozen=True, slots=True)
class AddResult:
    """How many given tokens became accounts, and how many were already there."""

    added: list[str]
    skipped: int


def parse_token_args(values: list[str]) -> list[GivenToken]:
    """Tokens given one per argument (``token`` or ``token,workspace``).

    Raises ``TokenListError`` naming the argument's position, never its text.
    """
    out = []
    for number, value in enumerate(values, start=1):
        given = parse_token(value)
        problem = token_problem(given)
        if problem is not None:
            raise TokenListError(f"argument {number} is {problem}")
        out.append(given)
    return out


async def add_tokens(pool: AccountPool, tokens: list[GivenToken]) -> AddResult:
    """Add ``tokens`` to the pool in one transaction; repeated ones are skipped."""
    if not tokens:
        raise TokenListError("no token given (blank lines and # comments do not count)")
    added = await pool.add_tokens(tokens)
    return AddResult(added=added, skipped=len(tokens) - len(added))


async def add_token_text(pool: AccountPool, text: str) -> AddResult:
    """Add the tokens of a pasted list (one per line, ``#`` comments)."""
    return await add_tokens(pool, parse_token_lines(text))


async def find_account(store: Store, key: str) -> Account:
    """The account whose id, fingerprint, or fingerprint hash (after the ``…``) is ``key``."""
    key = key.strip()
    account = await store.get_account(key)
    if account is not None:
        return account
    wanted = key.replace("...", "…")
    matches = [
        a
        for a in await store.list_accounts()
        if wanted in (a.fingerprint, a.fingerprint.partition("…")[2])
    ]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise AccountNotFound(f"{len(matches)} accounts match {key!r}; use the id instead.")
    raise AccountNotFound(f"No account has the id or fingerprint {key!r}.")


async def remove_account(store: Store, key: str) -> Account:
    """Remove the account named by id or fingerprint; returns what it was."""
    account = await find_account(store, key)
    if not await store.remove_account(account.id):
        raise AccountNotFound(f"No account has the id {account.id!r}.")
    return account


async def revive_accounts(store: Store, now: float | None = None) -> dict[str, int]:
    """Make every dead account active again and clear every cooldown."""
    now = time.time() if now is None else now
    revived = cleared = 0
    for account in await store.list_accounts():
        if account.status == "dead":
            await store.set_status(account.id, "active")
            revived += 1
        if cooldown_end(account, now) is not None:
            cleared += 1
        if account.cooldowns:
            await store.clear_cooldowns(account.id)
    return {"revived": revived, "cooldowns_cleared": cleared}


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """The outcome of refreshing one account (fingerprint as it is after the refresh)."""

    id: str
    fingerprint: str
    status: RefreshStatus
    error: str | None = None
    # The refresh showed it to be the same ChatGPT account as this one: merged into it.
    merged_into: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "error": self.error,
            "merged_into": self.merged_into,
        }


def refresh_candidates(
    accounts: list[Account], *, due_only: bool = False, now: float | None = None
) -> list[Account]:
    """The RefreshToken accounts a refresh should exchange (dead ones never).

    ``due_only`` keeps those without an AccessToken or whose AccessToken
    expires within ``REFRESH_DUE`` (what the scheduled refresh looks for).
    """
    now = time.time() if now is None else now
    out = []
    for account in accounts:
        if account.kind != "refresh_token" or account.status == "dead":
            continue
        expires = account.access_expires_at
        fresh = account.access_token is not None and (
            expires is None or expires - REFRESH_DUE > now
        )
        if due_only and fresh:
            continue
        out.append(account)
    return out


Progress = Callable[[RefreshResult], Awaitable[None] | None]


async def refresh_one(pool: AccountPool, account: Account) -> RefreshResult:
    """Exchange this account's RefreshToken now, even if its AccessToken is fresh."""
    if account.kind != "refresh_token":
        raise InvalidRequest(
            f"Account {account.id} is an AccessToken: it has no RefreshToken to exchange.",
            code="not_refreshable",
        )
    try:
        # The AccessToken held now is "stale" by decree: the exchange happens.
        fresh = await pool.refresh(account.id, stale=account.access_token)
    except UpstreamError as exc:
        current = await pool.store.get_account(account.id) or account
        return RefreshResult(account.id, current.fingerprint, "failed", exc.message)
    merged_into = fresh.id if fresh.id != account.id else None
    return RefreshResult(account.id, fresh.fingerprint, "refreshed", merged_into=merged_into)


async def refresh_accounts(
    pool: AccountPool, accounts: list[Account], progress: Progress | None = None
) -> list[RefreshResult]:
    """Refresh ``accounts`` one after the other, reporting each to ``progress``."""
    results = []
    for account in accounts:
        result = await refresh_one(pool, account)
        results.append(result)
        if progress is not None:
            maybe = progress(result)
            if maybe is not None:
                await maybe
    return results
