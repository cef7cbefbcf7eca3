"""The original chat2api's seed API at ``/seedtoken``, for Chat-Share and other share sites.

Share sites manage gateway users with three calls, and must work unchanged:
``POST /seedtoken`` ``{"seed", "token"}`` binds a seed (the token's account
joins the pool when new; an empty token registers the seed for any pool
account, chosen evenly at its first login), ``DELETE /seedtoken``
``{"seed"}`` unbinds one (``{"seed": "clear"}`` every one), and
``GET /seedtoken[?seed=]`` lists them. Users are then sent to
``/?token=<seed>``.

The caller shows ``Authorization: Bearer <one of the AUTHORIZATION codes>``
(as the original) or ``<ADMIN_KEY>``. The paths are served at the root as
the original did, and under ``API_PREFIX`` as well. Answers keep the
original's ``{"status": "success", ...}`` shape; unlike it, nothing answers
a token back (``GET`` shows the account id or a fingerprint).
"""

from __future__ import annotations

import hmac
from typing import Any

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chat2api.admin.api import CrossSiteRefused
from chat2api.api.origin import from_foreign_site
from chat2api.api.routing import json_response, methods, read_body
from chat2api.errors import AuthenticationFailed, InvalidRequest
from chat2api.gateway.identity import MAX_SEED_LENGTH, Identities, LoginRefused
from chat2api.pool.tokens import parse_token
from chat2api.state import AppState
from chat2api.store.base import fingerprint

CLEAR = "clear"  # the original's seed name for "every seed"


class SeedNotFound(InvalidRequest):
    """``DELETE``/``GET`` named a seed that is not bound."""

    status_code = 404
    default_code = "seed_not_found"


class SeedTokenBody(BaseModel):
    """``{"seed", "token"}``; ``token`` may be empty or missing (any pool account)."""

    model_config = ConfigDict(extra="ignore")  # share sites may send more fields

    seed: str
    token: str | None = None


class SeedOnlyBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    seed: str


def require_share_caller(request: Request) -> AppState:
    """The app state, once the caller showed an AUTHORIZATION code or the ADMIN_KEY."""
    state: AppState = request.app.state.chat2api
    if request.method not in ("GET", "HEAD") and from_foreign_site(request):
        raise CrossSiteRefused("Seed changes are accepted only from servers, not foreign pages.")
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    given = (value.strip() if scheme.lower() == "bearer" else "").encode()
    keys = [*state.settings.authorization, state.settings.admin_key or ""]
    # Every key is compared (constant time each), so timing does not tell which matched.
    matched = [bool(key) and hmac.compare_digest(given, key.encode()) for key in keys]
    if not any(matched):
        raise AuthenticationFailed(
            "Send one of the AUTHORIZATION codes (or the ADMIN_KEY) as 'Authorization: Bearer …'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return state


def _seed(value: str) -> str:
    seed = value.strip()
    if not seed or len(seed) > MAX_SEED_LENGTH or not seed.isprintable():
        raise InvalidRequest("seed must be 1 to 256 printable characters.", param="seed")
    return seed


def _shown(record: dict[str, Any]) -> str | None:
    if record.get("account_id") is not None:
        return str(record["account_id"])
    token = record.get("token")
    return fingerprint(str(token)) if token else None


async def list_seedtokens(request: Request) -> Response:
    """Every seed and its account id (or token fingerprint); ``?seed=`` for one."""
    state = require_share_caller(request)
    seeds = await Identities(state).seeds()
    wanted = request.query_params.get("seed")
    if wanted is not None:
        if wanted not in seeds:
            raise SeedNotFound(f"Seed '{wanted}' not found", param="seed")
        return json_response(
            {"status": "success", "data": {"seed": wanted, "token": _shown(seeds[wanted])}}
        )
    data = {seed: _shown(record) for seed, record in sorted(seeds.items())}
    return json_response({"status": "success", "data": data})


async def set_seedtoken(request: Request) -> Response:
    """Bind a seed to a token's account (added to the pool if new), or to any account."""
    state = require_share_caller(request)
    body = await read_body(request, SeedTokenBody, '{"seed": "…", "token": "…"}')
    seed = _seed(body.seed)
    identities = Identities(state)
    token = (body.token or "").strip()
    if not token:
        await identities.register_seed(seed)
        return json_response({"status": "success", "message": "Token updated successfully"})
    given = parse_token(token)
    if given.kind == "other":
        raise InvalidRequest(
            "token must be an AccessToken or a RefreshToken (or empty).", param="token"
        )
    _, (account_id,) = await state.pool.add_or_update([given])  # the same account: updated
    try:
        await identities.bind_seed(seed, account_id=account_id)
    except LoginRefused as exc:
        raise InvalidRequest(exc.message, param="token") from exc
    return json_response({"status": "success", "message": "Token updated successfully"})


async def delete_seedtoken(request: Request) -> Response:
    """Unbind one seed, or every seed with ``{"seed": "clear"}``."""
    state = require_share_caller(request)
    body = await read_body(request, SeedOnlyBody, '{"seed": "…"}')
    identities = Identities(state)
    if body.seed == CLEAR:
        await identities.clear_seeds()
        return json_response({"status": "success", "message": "All seeds deleted successfully"})
    seed = _seed(body.seed)
    if not await identities.unbind_seed(seed):
        raise SeedNotFound(f"Seed '{seed}' not found", param="seed")
    return json_response({"status": "success", "message": f"Seed '{seed}' deleted successfully"})


def share_routes(prefix: str) -> list[Route]:
    """``/seedtoken`` at the root (where the original served it) and under ``prefix``."""
    endpoints = {"GET": list_seedtokens, "POST": set_seedtoken, "DELETE": delete_seedtoken}
    paths = ["/seedtoken"] + ([f"{prefix}/seedtoken"] if prefix else [])
    return [methods(path, endpoints) for path in paths]
