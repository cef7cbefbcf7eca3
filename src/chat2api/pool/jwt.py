"""Reading an AccessToken's claims without verifying it (spec 7.4)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import orjson

_AUTH_CLAIM = "https://api.openai.com/auth"


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, or ``{}`` when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        data = orjson.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim in epoch seconds, if any."""
    exp = jwt_claims(token).get("exp")
    return float(exp) if isinstance(exp, int | float) else None


def token_plan(token: str) -> str | None:
    """The ChatGPT plan (free, plus, pro, team…) the token says, if any."""
    auth = jwt_claims(token).get(_AUTH_CLAIM)
    plan = auth.get("chatgpt_plan_type") if isinstance(auth, dict) else None
    return str(plan) if plan else None


def token_identity(token: str) -> str | None:
    """``<chatgpt_account_id>:<user id>``: which ChatGPT account and user a token is for.

    Two tokens with the same identity (a fresh login, a token from a refresh)
    are one account of the pool.
    """
    auth = jwt_claims(token).get(_AUTH_CLAIM)
    if not isinstance(auth, dict):
        return None
    account = auth.get("chatgpt_account_id")
    user = auth.get("chatgpt_user_id") or auth.get("user_id")
    if not isinstance(account, str) or not isinstance(user, str) or not account or not user:
        return None
    return f"{account}:{user}"


def identity_key(token: str, workspace: str | None) -> str | None:
    """What the store knows an account by (``Store.learn_identity``), if the token tells it.

    A hash of ``token_identity`` and the Team workspace the account is used
    in (``token,workspace``): the same user in two workspaces is two
    accounts. The store never sees the user id itself.
    """
    identity = token_identity(token)
    if identity is None:
        return None
    material = f"chat2api-identity:{identity},{workspace or ''}"
    return hashlib.sha256(material.encode()).hexdigest()[:32]
