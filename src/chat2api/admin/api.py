"""The admin JSON API under ``/tokens/api`` and the token page at ``/tokens``.

Every API route needs ``Authorization: Bearer <ADMIN_KEY>``. With no
``ADMIN_KEY`` set the API is switched off (503 ``admin_disabled``) and the
page explains how to switch it on. Tokens travel only in POST bodies, never
in a URL, and no answer carries a secret: accounts are shown by id and
fingerprint.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from chat2api.admin.accounts import (
    accounts_overview,
    add_token_text,
    find_account,
    refresh_accounts,
    refresh_candidates,
    refresh_one,
    remove_account,
    revive_accounts,
)
from chat2api.admin.page import page_headers, render_page
from chat2api.errors import AuthenticationFailed, Chat2APIError, InvalidRequest
from chat2api.pool.tokens import TokenListError
from chat2api.state import AppState


class AdminDisabled(Chat2APIError):
    """No ADMIN_KEY is set, so token management over HTTP is off."""

    status_code = 503
    error_type = "server_error"
    default_code = "admin_disabled"


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.chat2api
    return state


def require_admin(request: Request) -> AppState:
    """The app state, once the request has shown the admin key (constant-time check)."""
    state = _state(request)
    admin_key = state.settings.admin_key
    if not admin_key:
        raise AdminDisabled(
            "Token management is disabled: set ADMIN_KEY in the environment (or .env) "
            "and restart chat2api."
        )
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    given = value.strip() if scheme.lower() == "bearer" else ""
    if not hmac.compare_digest(given.encode(), admin_key.encode()):
        raise AuthenticationFailed(
            "Send the admin key as 'Authorization: Bearer <ADMIN_KEY>'.",
            code="invalid_admin_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return state


Admin = Annotated[AppState, Depends(require_admin)]


class AddTokensBody(BaseModel):
    """``{"tokens": "<one per line, # comments>"}``."""

    model_config = ConfigDict(extra="forbid")

    tokens: str


api = APIRouter(prefix="/tokens/api", dependencies=[Depends(require_admin)])


@api.get("/accounts")
async def list_accounts(state: Admin) -> dict[str, Any]:
    """Counts by state and every account (no secrets)."""
    return await accounts_overview(state.store)


@api.post("/accounts")
async def add_accounts(request: Request, state: Admin) -> dict[str, Any]:
    """Add the pasted tokens; ``{"added", "skipped", "ids"}``."""
    # The body is read here, after the key check, so a caller without the key
    # learns nothing from how its body is judged.
    raw = await request.body()
    try:
        body = AddTokensBody.model_validate_json(raw)
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            raise InvalidRequest(
                'The body must be JSON: {"tokens": "<one token per line>"}.', code="invalid_json"
            ) from exc
        raise
    try:
        result = await add_token_text(state.pool, body.tokens)
    except TokenListError as exc:
        raise InvalidRequest(str(exc), param="tokens", code="invalid_token_list") from exc
    return {"added": len(result.added), "skipped": result.skipped, "ids": result.added}


@api.delete("/accounts")
async def clear_accounts(state: Admin) -> dict[str, Any]:
    """Remove every account."""
    return {"removed": await state.store.clear_accounts()}


@api.post("/accounts/revive")
async def revive(state: Admin) -> dict[str, Any]:
    """Dead accounts become active again; every cooldown is cleared."""
    return await revive_accounts(state.store)


@api.delete("/accounts/{account_id}")
async def delete_account(account_id: str, state: Admin) -> dict[str, Any]:
    """Remove one account (by id or fingerprint)."""
    account = await remove_account(state.store, account_id)
    return {"removed": account.id, "fingerprint": account.fingerprint}


@api.post("/accounts/{account_id}/refresh")
async def refresh_account(account_id: str, state: Admin) -> dict[str, Any]:
    """Exchange one account's RefreshToken now."""
    account = await find_account(state.store, account_id)
    result = await refresh_one(state.pool, account)
    return {"results": [result.to_dict()]}


@api.post("/refresh")
async def refresh_all(state: Admin) -> dict[str, Any]:
    """Exchange every live RefreshToken account's token now; one result per account."""
    accounts = refresh_candidates(await state.store.list_accounts())
    results = await refresh_accounts(state.pool, accounts)
    return {"results": [result.to_dict() for result in results]}


page = APIRouter()


@page.get("/tokens", response_class=HTMLResponse)
async def token_page(request: Request) -> HTMLResponse:
    """The token management page (the admin key is asked for in the page itself)."""
    enabled = bool(_state(request).settings.admin_key)
    return HTMLResponse(render_page(enabled=enabled), headers=page_headers())


router = APIRouter()
router.include_router(api)
router.include_router(page)
