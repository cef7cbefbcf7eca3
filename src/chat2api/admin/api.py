"""The admin JSON API under ``/tokens/api`` and the token page at ``/tokens``.

Every API route needs ``Authorization: Bearer <ADMIN_KEY>``. With no
``ADMIN_KEY`` set the API is switched off (503 ``admin_disabled``) and the
page explains how to switch it on. Tokens travel only in POST bodies, never
in a URL, and no answer carries a secret: accounts are shown by id and
fingerprint.
"""

from __future__ import annotations

import hmac

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

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
from chat2api.api.origin import from_foreign_site
from chat2api.api.routing import json_response, methods, read_body
from chat2api.errors import AuthenticationFailed, Chat2APIError, InvalidRequest
from chat2api.pool.tokens import TokenListError
from chat2api.state import AppState


class CrossSiteRefused(Chat2APIError):
    """A browser sent a state-changing request for another site's page."""

    status_code = 403
    error_type = "invalid_request_error"
    default_code = "cross_site_request"


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
    if request.method not in ("GET", "HEAD") and from_foreign_site(request):
        raise CrossSiteRefused("Admin changes are accepted only from this site's own pages.")
    address = request.client.host if request.client else ""
    state.logins.check(address, "admin key")
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    given = value.strip() if scheme.lower() == "bearer" else ""
    if not hmac.compare_digest(given.encode(), admin_key.encode()):
        state.logins.failed(address, "admin key")
        raise AuthenticationFailed(
            "Send the admin key as 'Authorization: Bearer <ADMIN_KEY>'.",
            code="invalid_admin_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return state


class AddTokensBody(BaseModel):
    """``{"tokens": "<one per line, # comments>"}``."""

    model_config = ConfigDict(extra="forbid")

    tokens: str


async def list_accounts(request: Request) -> Response:
    """Counts by state and every account (no secrets)."""
    state = require_admin(request)
    return json_response(await accounts_overview(state.store, settings=state.settings))


async def add_accounts(request: Request) -> Response:
    """Add the pasted tokens; ``{"added", "skipped", "ids"}``."""
    state = require_admin(request)
    # The body is read here, after the key check, so a caller without the key
    # learns nothing from how its body is judged.
    body = await read_body(request, AddTokensBody, '{"tokens": "<one token per line>"}')
    try:
        result = await add_token_text(state.pool, body.tokens)
    except TokenListError as exc:
        raise InvalidRequest(str(exc), param="tokens", code="invalid_token_list") from exc
    return json_response(
        {"added": len(result.added), "skipped": result.skipped, "ids": result.added}
    )


async def clear_accounts(request: Request) -> Response:
    """Remove every account."""
    state = require_admin(request)
    return json_response({"removed": await state.store.clear_accounts()})


async def revive(request: Request) -> Response:
    """Dead accounts become active again; every cooldown is cleared."""
    state = require_admin(request)
    return json_response(await revive_accounts(state.store))


async def delete_account(request: Request) -> Response:
    """Remove one account (by id or fingerprint)."""
    state = require_admin(request)
    account = await remove_account(state.store, request.path_params["account_id"])
    return json_response({"removed": account.id, "fingerprint": account.fingerprint})


async def refresh_account(request: Request) -> Response:
    """Exchange one account's RefreshToken now."""
    state = require_admin(request)
    account = await find_account(state.store, request.path_params["account_id"])
    result = await refresh_one(state.pool, account)
    return json_response({"results": [result.to_dict()]})


async def refresh_all(request: Request) -> Response:
    """Exchange every live RefreshToken account's token now; one result per account."""
    state = require_admin(request)
    accounts = refresh_candidates(await state.store.list_accounts())
    results = await refresh_accounts(state.pool, accounts)
    return json_response({"results": [result.to_dict() for result in results]})


async def token_page(request: Request) -> Response:
    """The token management page (the admin key is asked for in the page itself)."""
    enabled = bool(_state(request).settings.admin_key)
    return HTMLResponse(render_page(enabled=enabled), headers=page_headers())


routes = [
    methods(
        "/tokens/api/accounts",
        {"GET": list_accounts, "POST": add_accounts, "DELETE": clear_accounts},
    ),
    Route("/tokens/api/accounts/revive", revive, methods=["POST"]),
    Route("/tokens/api/accounts/{account_id}", delete_account, methods=["DELETE"]),
    Route("/tokens/api/accounts/{account_id}/refresh", refresh_account, methods=["POST"]),
    Route("/tokens/api/refresh", refresh_all, methods=["POST"]),
    Route("/tokens", token_page, methods=["GET"]),
]
