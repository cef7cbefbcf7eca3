"""Continuing an upstream conversation: which account it lives on, kept in the store.

An answer produced with history kept upstream leaves a *binding*: the
upstream conversation id and last message id, the account it ran on (a pool
account's id, or the device id of a login-free conversation), and a hash of
the API key that created it. A later request naming it continues that
conversation on the same account, from any instance sharing the store.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from starlette.requests import Request

from chat2api.conversation import Turn
from chat2api.convert.completion import Answer
from chat2api.errors import InvalidRequest
from chat2api.pool.lease import AccountSource, FixedAccount
from chat2api.pool.pool import PoolLease
from chat2api.pool.sources import PinnedPoolAccount
from chat2api.state import AppState
from chat2api.values import Credentials

BINDING = "binding"
BINDING_TTL = 30 * 86400.0


class NotFound(InvalidRequest):
    status_code = 404
    default_code = "not_found"


def owner_of(request: Request) -> str:
    """Whose records these are: a hash of the API key (or ``anonymous``)."""
    return _owner(request.headers.get("authorization", ""))


@lru_cache(maxsize=64)
def _owner(key: str) -> str:
    # A client sends the same key with every request: hashed once.
    return hashlib.sha256(key.encode()).hexdigest()[:32] if key else "anonymous"


@dataclass(frozen=True, slots=True)
class Continuation:
    """Where to continue: the account source and ``(conversation id, parent id)``."""

    accounts: AccountSource
    continues: tuple[str, str]


async def save_binding(state: AppState, key: str, owner: str, turn: Turn, answer: Answer) -> None:
    """Remember where ``answer``'s upstream conversation lives, under ``key``."""
    if not (answer.conversation_id and answer.message_id):
        return
    lease, credentials = turn.lease, turn.lease.credentials
    binding: dict[str, Any] = {
        "owner": owner,
        "conversation_id": answer.conversation_id,
        "message_id": answer.message_id,
        "pool_account": lease.key if isinstance(lease, PoolLease) else None,
        "device": credentials.device if credentials.anonymous else None,
    }
    await state.store.put_record(BINDING, key, binding, BINDING_TTL)


async def find_continuation(
    state: AppState, key: str, owner: str, accounts: AccountSource, *, param: str, what: str
) -> Continuation:
    """The continuation bound to ``key``; 404 naming ``param`` if there is none for ``owner``.

    ``accounts`` (the request's own source) serves conversations that ran on
    the client's own AccessToken: the client must send that token again.
    """
    binding = await state.store.get_record(BINDING, key)
    if binding is None or binding.get("owner") != owner:
        raise NotFound(f"{what} with id '{key}' not found.", param=param)
    if binding.get("pool_account"):
        accounts = PinnedPoolAccount(state.pool, binding["pool_account"])
    elif binding.get("device"):
        accounts = FixedAccount(Credentials(device=binding["device"]))
    return Continuation(accounts, (binding["conversation_id"], binding["message_id"]))
