"""The OAuth refresh endpoint (`POST /oauth/token`, spec 7.2).

Served by the same app, so one simulator base URL stands in for both
chatgpt.com and auth.openai.com.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from chat2api.sim import faults
from chat2api.sim.common import headers_of, parse_json, sim_state
from chat2api.sim.tokens import (
    TokenError,
    mint_access_token,
    mint_id_token,
    read_refresh_token,
    rotate_refresh_token,
)

OAUTH_SCOPE = "openid profile email offline_access"
OAUTH_EXPIRES_IN = 864000
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


def _oauth_error(status: int, error: str, description: str) -> Response:
    return faults.json_response(
        status, {"error": error, "error_description": description}, headers=NO_STORE
    )


def _parse_token_body(raw: bytes, content_type: str) -> dict[str, Any] | None:
    """The body of a token request: JSON (mobile form) or form-urlencoded (Codex form)."""
    if "application/x-www-form-urlencoded" in content_type or not raw.lstrip().startswith(b"{"):
        try:
            pairs = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return None
        return dict(pairs)
    parsed = parse_json(raw)
    return parsed if isinstance(parsed, dict) and "_unparsed" not in parsed else None


async def oauth_token(request: Request) -> Response:
    """POST /oauth/token — exchange a refresh token (spec 7.2), rotating it when it says so."""
    state = sim_state(request)
    cfg = state.config
    state.stats.refreshes += 1
    headers = headers_of(request)
    body = _parse_token_body(await request.body(), headers.get("content-type", ""))
    state.record(request.url.path, "POST", headers, body)
    if cfg.refresh_delay:
        await asyncio.sleep(cfg.refresh_delay)
    if state.next_refresh_fault() is not None:
        state.stats.faults_injected += 1
        return _oauth_error(500, "server_error", "The authorization server had an internal error.")

    if body is None:
        return _oauth_error(400, "invalid_request", "The request body could not be parsed.")
    if body.get("grant_type") != "refresh_token":
        return _oauth_error(400, "unsupported_grant_type", "Only refresh_token is supported.")
    client_id = body.get("client_id")
    token = body.get("refresh_token")
    if not isinstance(client_id, str) or not client_id:
        return _oauth_error(400, "invalid_request", "Missing client_id.")
    if not isinstance(token, str) or not token:
        return _oauth_error(400, "invalid_request", "Missing refresh_token.")
    try:
        grant = read_refresh_token(token)
    except TokenError:
        return _oauth_error(400, "invalid_grant", "Invalid refresh token.")
    if grant.state == "revoked":
        return _oauth_error(400, "invalid_grant", "The refresh token has been revoked.")
    # Check and retire in one step (no await in between): of concurrent uses, one wins.
    if token in state.used_refresh_tokens or (
        grant.rotate and not state.spend_refresh_token(token)
    ):
        return _oauth_error(
            400,
            "invalid_grant",
            "Your refresh token has already been used to generate a new access token. "
            "Please try signing in again.",
        )
    access = mint_access_token(
        state=grant.access_state,
        plan=grant.plan,
        account_id=grant.account_id,
        expires_in=OAUTH_EXPIRES_IN,
        clears_in=grant.clears_in,
        user_id=grant.user_id(),
    )
    answer = {
        "access_token": access,
        "refresh_token": rotate_refresh_token(grant) if grant.rotate else token,
        "id_token": mint_id_token(grant, client_id),
        "scope": OAUTH_SCOPE,
        "expires_in": OAUTH_EXPIRES_IN,
        "token_type": "Bearer",
    }
    return faults.json_response(200, answer, headers=NO_STORE)
