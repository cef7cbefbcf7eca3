"""Request helpers shared by the simulator's handlers: state, headers, JSON, who is calling."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from chat2api.sim import faults
from chat2api.sim.state import SimState
from chat2api.sim.tokens import Account, TokenError, read_access_token


def sim_state(request: Request) -> SimState:
    """The simulator state of the app serving `request`."""
    state: SimState = request.app.state.sim
    return state


def headers_of(request: Request) -> dict[str, str]:
    """Request headers, names lower-cased."""
    return {k.lower(): v for k, v in request.headers.items()}


def parse_json(raw: bytes) -> Any:
    """Parsed JSON; None for an empty body; `{"_unparsed": text}` when it is not JSON."""
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"_unparsed": raw.decode("utf-8", "replace")}


def identify(request: Request) -> Account | Response | None:
    """The account behind a request: Account (backend-api), None (anon) or an error response."""
    if request.url.path.startswith("/backend-anon/"):
        if not request.headers.get("oai-device-id"):
            return faults.json_response(401, {"detail": "Missing OAI-Device-Id"})
        return None
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return faults.unauthorized()
    try:
        account = read_access_token(token.strip())
    except TokenError:
        return faults.invalid_jwt()
    if account.is_expired():
        return faults.token_expired()
    return account


def owner_of(who: Account | None, headers: dict[str, str]) -> str:
    """Who a kept conversation belongs to: the token's user and account, or the device."""
    if who is None:
        return "device:" + headers.get("oai-device-id", "")
    return f"user:{who.user_id}|account:{who.account_id}"
