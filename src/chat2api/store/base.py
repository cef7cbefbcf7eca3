"""The ``Store`` contract: what the pool, admin and CLI persist, on any backend.

Two backends implement it: SQLite (``store.sqlite``, the embedded default, one
instance) and Redis (``store.redis``, selected by ``REDIS_URL``, shared by
several instances). One contract-test suite runs against both.

Design notes:

* An account's identity is ``account_key(secret, workspace)``: a short hash,
  never the secret, so ids can be logged and put in URLs.
* Everything the request path reads per request is a single-key operation
  (the rotation counter, one account's record), so choosing an account costs
  the same with 1 or 10,000 accounts; the full list is only read when
  ``version`` says it changed (accounts added or removed).
* State that must be shared by instances lives here: dead marks, cooldowns,
  cached AccessTokens, rotated RefreshTokens, the rotation counter, the
  locks that make a refresh single-flight, and the concurrency slots of each
  account (``take_slot``): leases that expire unless their holder renews
  them, so a process killed with its slots held frees them within ``ttl``.
* Updates to an id that is not stored (``set_status``, ``set_cooldown``,
  ``clear_cooldowns``, ``set_tokens``, ``record_use``) are ignored: an account
  removed while a request used it must not come back as a partial record.
* One ChatGPT account is one account of the pool. Its *identity* (a hash
  of its ``chatgpt_account_id``, user id and workspace, made by the pool
  from a JWT) is known once one of its AccessTokens was seen, for a
  RefreshToken only after an exchange. ``learn_identity`` records it; when
  another account already has it, the two are merged in one transaction
  (``merge_accounts`` says what the merged account keeps): the account
  added first survives, and the other's id becomes an alias of it that
  ``get_account`` follows, so whatever still names the dropped id (a seed,
  a conversation binding, a download link) reaches the survivor.
* Records (``put_record`` …) are small JSON objects any instance may need:
  saved Responses-API responses, and bindings of an upstream conversation to
  the account it lives on. ``encode_record`` checks and serialises them once,
  for every backend, so both accept and refuse exactly the same values.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, ParamSpec, Protocol, TypeVar

import orjson

from chat2api.errors import StoreUnavailable

log = logging.getLogger(__name__)
_P = ParamSpec("_P")
_T = TypeVar("_T")

AccountKind = Literal["access_token", "refresh_token"]
AccountStatus = Literal["active", "dead"]


class StoreErrorMap:
    """Turns a backend's outage errors into ``StoreUnavailable`` (one place per backend).

    Used as a context manager around a store call, or through
    :meth:`method` as a decorator of a store's async methods. The backend's
    message names the failure (connection refused, disk full), never data.
    """

    def __init__(self, backend: str, errors: tuple[type[BaseException], ...]) -> None:
        self.backend = backend
        self.errors = errors

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and isinstance(exc, self.errors):
            log.warning("%s store unavailable: %s: %s", self.backend, type(exc).__name__, exc)
            raise StoreUnavailable(
                f"The {self.backend} store cannot be used right now; try again shortly."
            ) from exc

    def method(
        self, func: Callable[_P, Coroutine[Any, Any, _T]]
    ) -> Callable[_P, Coroutine[Any, Any, _T]]:
        """``func`` with its outage errors mapped."""

        @functools.wraps(func)
        async def mapped(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            with self:
                return await func(*args, **kwargs)

        return mapped


def account_key(secret: str, workspace: str | None = None) -> str:
    """A stable, non-reversible id for an account: 16 hex chars."""
    material = secret if workspace is None else f"{secret},{workspace}"
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def fingerprint(secret: str) -> str:
    """What a person sees for a secret: its kind-revealing head and a short hash."""
    return f"{secret[:4]}…{hashlib.sha256(secret.encode()).hexdigest()[:8]}"


@dataclass(slots=True)
class Account:
    """One ChatGPT account of the pool, with its shared state."""

    id: str
    kind: AccountKind
    secret: str  # as given: the AccessToken or the RefreshToken (rotated ones replace it)
    workspace: str | None = None  # ChatGPT-Account-Id of a Team workspace
    access_token: str | None = None  # for refresh-token accounts: the cached exchange
    access_expires_at: float | None = None  # epoch seconds
    plan: str | None = None
    status: AccountStatus = "active"
    dead_reason: str | None = None
    cooldowns: dict[str, float] = field(default_factory=dict)  # model ("*" = all) → epoch
    last_used: float | None = None
    successes: int = 0
    failures: int = 0
    added_at: float = 0.0
    identity: str | None = None  # which ChatGPT account and user (``learn_identity``)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.secret)

    def cooling_until(self, model: str, now: float) -> float | None:
        """When this account is usable again for ``model``, if it is cooling now."""
        ends = [t for m, t in self.cooldowns.items() if m in (model, "*") and t > now]
        return max(ends) if ends else None

    def __repr__(self) -> str:  # never print secrets
        return f"Account({self.id}, {self.kind}, {self.status})"


@dataclass(frozen=True, slots=True)
class Learnt:
    """What ``learn_identity`` did: the account's id now, and the id merged into it."""

    id: str
    merged: str | None = None  # the other account of the same identity, now an alias of ``id``


def _token_rank(account: Account) -> tuple[bool, float]:
    # Live beats dead, then the AccessToken that lasts longer (none lasts least).
    expires = account.access_expires_at if account.access_token else None
    return (account.status == "active", -1.0 if expires is None else expires)


def merge_accounts(keep: Account, drop: Account, identity: str) -> Account:
    """One account from two of the same identity: ``keep`` (added first) with ``drop``'s news.

    * The id, ``added_at`` and workspace are ``keep``'s: the browser identity
      (device id, proxy, user agent, impersonation), seed bindings and
      conversations all hang on the id, so the upstream goes on seeing the
      account it has seen longest.
    * The tokens and what they decide (AccessToken, its expiry, plan, status
      and dead reason) come from the *fresher* of the two: an active one over
      a dead one, then the later-expiring AccessToken, ``drop`` on a tie (it
      was added or refreshed last). The RefreshToken is the fresher one's if
      it has one, else the other's: a RefreshToken is never traded for an
      AccessToken alone.
    * History is pooled: every cooldown (the later end per model: both were
      the same upstream account), success and failure counts summed, the
      later ``last_used``.
    """
    fresher, other = (keep, drop) if _token_rank(keep) > _token_rank(drop) else (drop, keep)
    holder = fresher if fresher.kind == "refresh_token" or other.kind != "refresh_token" else other
    cooldowns = dict(keep.cooldowns)
    for model, until in drop.cooldowns.items():
        cooldowns[model] = max(until, cooldowns.get(model, until))
    last_used = [t for t in (keep.last_used, drop.last_used) if t is not None]
    return Account(
        id=keep.id,
        kind=holder.kind,
        secret=holder.secret,
        workspace=keep.workspace,
        access_token=fresher.access_token or other.access_token,
        access_expires_at=(
            fresher.access_expires_at if fresher.access_token else other.access_expires_at
        ),
        plan=fresher.plan or other.plan,
        status=fresher.status,
        dead_reason=fresher.dead_reason,
        cooldowns=cooldowns,
        last_used=max(last_used) if last_used else None,
        successes=keep.successes + drop.successes,
        failures=keep.failures + drop.failures,
        added_at=keep.added_at,
        identity=identity,
    )


def check_account(account: Account) -> None:
    """Raise ``ValueError`` if ``account`` cannot be stored as it is."""
    if not isinstance(account, Account):
        raise ValueError(f"not an Account: {type(account).__name__}")
    if not account.id or not isinstance(account.id, str):
        raise ValueError("an account needs an id")
    if account.kind not in ("access_token", "refresh_token"):
        raise ValueError(f"account {account.id}: unknown kind {account.kind!r}")
    if account.status not in ("active", "dead"):
        raise ValueError(f"account {account.id}: unknown status {account.status!r}")
    if not account.secret or not isinstance(account.secret, str):
        raise ValueError(f"account {account.id}: an account needs a secret")


def check_record_id(kind: str, key: str) -> None:
    """Raise ``ValueError`` unless ``kind`` is a non-empty name without ``:`` and
    ``key`` a string.

    Both are part of a Redis key: a colon in the kind would let ``("a:b", "c")``
    and ``("a", "b:c")`` name the same record.
    """
    if not isinstance(kind, str) or not kind or ":" in kind:
        raise ValueError(f"a record kind is a non-empty name without ':', not {kind!r}")
    if not isinstance(key, str):
        raise ValueError(f"a record key is a string, not {type(key).__name__}")


def encode_record(kind: str, key: str, value: dict[str, Any], ttl: float | None = None) -> bytes:
    """``value`` as JSON bytes, or ``ValueError`` if it cannot be stored as a record.

    ``(kind, key)`` must pass ``check_record_id``, ``value`` be a JSON object
    and ``ttl``, if given, a positive number of seconds.
    """
    check_record_id(kind, key)
    if not isinstance(value, dict):
        raise ValueError(f"a record is a JSON object, not {type(value).__name__}")
    if ttl is not None and not ttl > 0:  # also refuses NaN
        raise ValueError(f"a record ttl must be positive seconds, not {ttl!r}")
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"record {kind}: not JSON-serialisable: {exc}") from exc


def decode_record(data: str | bytes) -> dict[str, Any]:
    """A stored record back as a dict (the inverse of ``encode_record``)."""
    value = orjson.loads(data)
    if not isinstance(value, dict):  # only encode_record writes records
        raise ValueError(f"a stored record is not a JSON object: {type(value).__name__}")
    return value


class Store(Protocol):
    """Persistence of the account pool; every method is atomic on its own."""

    async def add_accounts(self, accounts: Sequence[Account]) -> list[str]:
        """Insert new accounts in ONE transaction (all or none); returns the ids added
        (accounts whose id already exists are skipped, not updated; within one call
        the first of a repeated id wins). Every account is checked first
        (``check_account``): one invalid account raises ``ValueError`` and stores
        nothing. An ``added_at`` of 0 is stamped with the time of the call.
        An id that was merged into an account still stored counts as existing;
        ``identity`` is not stored by this call (``learn_identity`` sets it)."""
        ...

    async def get_account(self, account_id: str) -> Account | None:
        """The account, or None; an id merged into another reads as that other
        account (the ``Account`` returned then has the survivor's id)."""
        ...

    async def account_with_identity(self, identity: str) -> Account | None:
        """The account whose identity is ``identity``, if any."""
        ...

    async def learn_identity(self, account_id: str, identity: str) -> Learnt | None:
        """Record that ``account_id``'s tokens are for ``identity``; None if it is not stored.

        When another account has ``identity`` already, the two become one in
        ONE transaction (all or nothing, even if the process dies): the one
        added first keeps its id and takes ``merge_accounts`` of both, the
        other is removed and its id (and every id merged into it before)
        becomes an alias of the survivor; the version changes.
        """
        ...

    async def list_accounts(self) -> list[Account]:
        """Every account, oldest first."""
        ...

    async def account_ids(self) -> tuple[int, list[str]]:
        """``(version, ids oldest first)``; see ``version``."""
        ...

    async def version(self) -> int:
        """A number that changes whenever accounts are added or removed."""
        ...

    async def remove_account(self, account_id: str) -> bool: ...

    async def clear_accounts(self) -> int:
        """Remove every account; returns how many there were."""
        ...

    async def set_status(
        self, account_id: str, status: AccountStatus, reason: str | None = None
    ) -> None:
        """Mark an account dead (with why) or active again (clears the reason)."""
        ...

    async def set_cooldown(self, account_id: str, model: str, until: float) -> None:
        """Cool ``account_id`` for ``model`` (``"*"`` = every model) until epoch ``until``."""
        ...

    async def clear_cooldowns(self, account_id: str) -> None: ...

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
        ...

    async def record_use(self, account_id: str, *, success: bool, at: float) -> None:
        """Count one success or failure and set ``last_used``."""
        ...

    async def next_counter(self, name: str) -> int:
        """An ever-increasing shared counter (round-robin cursor): 1, 2, 3, …"""
        ...

    async def take_slot(self, account_id: str, lease: str, limit: int, ttl: float) -> bool:
        """Hold one of ``limit`` concurrency slots of ``account_id`` as ``lease``.

        Atomic across every process and instance on this store: True when a
        slot was free (it is now ``lease``'s for ``ttl`` seconds), False when
        ``limit`` unexpired slots are held. A slot whose expiry passed (its
        holder died without freeing it) counts as free.
        """
        ...

    async def renew_slots(self, held: Sequence[tuple[str, str]], ttl: float) -> None:
        """Move the expiry of each ``(account_id, lease)`` still held to ``ttl`` from now."""
        ...

    async def free_slot(self, account_id: str, lease: str) -> None:
        """Give the slot back (nothing happens if it expired or was never held)."""
        ...

    async def slots_held(self, account_id: str) -> int:
        """How many unexpired slots of ``account_id`` are held now."""
        ...

    def lock(self, name: str, ttl: float) -> AbstractAsyncContextManager[bool]:
        """A lock shared by every instance on this store, held at most ``ttl`` seconds.

        ``async with store.lock(name, ttl) as acquired`` waits (up to ``ttl``)
        for the lock; ``acquired`` is False if it could not be had in time.
        """
        ...

    async def put_record(
        self, kind: str, key: str, value: dict[str, Any], ttl: float | None = None
    ) -> None:
        """Store (insert or replace) one JSON object under ``(kind, key)``.

        It expires ``ttl`` seconds from now if given, else never; replacing a
        record also replaces its expiry. ``kind`` is a short name such as
        ``"response"`` or ``"binding"`` (no ``:``); each kind is its own
        namespace of keys, and ``key`` is any string. A value that is not a
        JSON object, a bad kind or a non-positive ``ttl`` raises ``ValueError``
        (see ``encode_record``) and stores nothing; so does a bad kind given
        to ``get_record`` or ``delete_record``.
        """
        ...

    async def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        """The object stored under ``(kind, key)``, or None if absent or expired."""
        ...

    async def delete_record(self, kind: str, key: str) -> bool:
        """Remove the record; True if it existed (and had not expired)."""
        ...

    async def close(self) -> None: ...
