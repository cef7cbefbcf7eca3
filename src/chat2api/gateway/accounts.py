"""``GET /backend-api/accounts/check``: the account's real plan, nothing of its owner.

The web app reads this at start to decide which models and tools to offer.
The blocked-endpoint table (``gateway.blocked``) keeps the owner's data
(names, user ids, payment processor, promotions) from gateway users; this
module fills the same harmless shape with what the upstream says about the
plan (``plan_type``, ``features``, the entitlement's plan and expiry), so a
Plus account shows its models. When the upstream cannot be asked, the plan
the AccessToken names (its JWT) is used; without either, ``free``.
"""

from __future__ import annotations

import copy
from typing import Any

from chat2api.errors import UpstreamError
from chat2api.gateway.blocked import ACCOUNT_CHECK
from chat2api.pool.jwt import token_plan
from chat2api.state import AppState
from chat2api.values import Credentials

CHECK_PATH = "/backend-api/accounts/check/v4-2023-04-27"


def _upstream_account(data: dict[str, Any], workspace: str | None) -> dict[str, Any] | None:
    accounts = data.get("accounts")
    if not isinstance(accounts, dict) or not accounts:
        return None
    ordering = data.get("account_ordering")
    keys = [workspace] if workspace else []
    keys += [k for k in ordering if isinstance(k, str)] if isinstance(ordering, list) else []
    keys += ["default", *accounts]
    for key in keys:
        entry = accounts.get(key)
        if isinstance(entry, dict):
            return entry
    return None


def _plan_of(entry: dict[str, Any]) -> tuple[str | None, list[str], dict[str, Any]]:
    account = entry.get("account") if isinstance(entry.get("account"), dict) else {}
    plan = account.get("plan_type") if isinstance(account, dict) else None
    features = [f for f in entry.get("features") or [] if isinstance(f, str)]
    entitlement = entry.get("entitlement") if isinstance(entry.get("entitlement"), dict) else {}
    kept = {
        k: entitlement[k]
        for k in ("has_active_subscription", "subscription_plan", "expires_at")
        if isinstance(entitlement, dict) and k in entitlement
    }
    return (plan if isinstance(plan, str) and plan else None), features, kept


async def account_check(state: AppState, credentials: Credentials) -> dict[str, Any]:
    """The accounts/check answer for ``credentials`` (see module docstring)."""
    plan: str | None = None
    features: list[str] = []
    entitlement: dict[str, Any] = {}
    if credentials.access_token is not None:
        try:
            data = await state.backend.request_json(
                state.backend.next_target(credentials),
                "GET",
                CHECK_PATH,
                credentials=credentials,
                what="the account check",
            )
        except UpstreamError:
            data = {}
        entry = _upstream_account(data, credentials.account_id)
        if entry is not None:
            plan, features, entitlement = _plan_of(entry)
        plan = plan or token_plan(credentials.access_token)
    answer = copy.deepcopy(ACCOUNT_CHECK)
    default = answer["accounts"]["default"]
    default["account"]["plan_type"] = plan or "free"
    default["features"] = features
    default["entitlement"].update(entitlement)
    if plan and plan != "free" and "has_active_subscription" not in entitlement:
        default["entitlement"]["has_active_subscription"] = True
    return answer
