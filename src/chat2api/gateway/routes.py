"""The gateway's routes: login, logout, the session endpoint, the seed API, the catch-all.

Mounted last (``ENABLE_GATEWAY=true`` only), so every chat2api route wins
over the catch-all. Without a session, page and asset requests (``GET`` and
``HEAD`` outside the API prefixes) are redirected to ``/login``; API calls
and other methods get 401 JSON, which a script can act on, where a redirect
would hand it the login page as data.
"""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from chat2api.admin.api import require_admin
from chat2api.api.origin import from_foreign_site
from chat2api.api.routing import json_response, methods, prefixed, read_body
from chat2api.errors import InvalidRequest, TooManyAttempts
from chat2api.gateway.blocked import blocked
from chat2api.gateway.identity import SESSION_TTL, Identities, LoginRefused, Session
from chat2api.gateway.page import page_headers, render_login
from chat2api.gateway.paths import BadPath, request_path
from chat2api.gateway.proxy import Forwarder
from chat2api.pool.pool import PoolLease
from chat2api.settings import Settings
from chat2api.state import AppState
from chat2api.store.base import fingerprint

COOKIE = "chat2api_gateway"
API_PREFIXES = ("/backend-api/", "/backend-anon/", "/backend-alt/", "/public-api/", "/api/")
PLACEHOLDER_TOKEN = "chat2api-gateway-session"  # the proxy puts the real token in
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_CROSS_SITE_LOGIN = "Log in from this page: a form on another site cannot log you in."
_CROSS_SITE_LINK = "This login link came from another site: press Log in to use it."


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.chat2api
    return state


def _json(status: int, body: dict[str, Any]) -> Response:
    return json_response(body, status)


def _login_page(
    error: str | None = None,
    status: int = 200,
    value: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    return HTMLResponse(
        render_login(error, value), status_code=status, headers=page_headers() | (headers or {})
    )


def _logged_in(request: Request, session: Session) -> Response:
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE,
        session.id,
        max_age=int(SESSION_TTL),
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def _login(request: Request, value: str) -> Response:
    state = _state(request)
    address = request.client.host if request.client else ""
    try:
        state.logins.check(address, "gateway login")
    except TooManyAttempts as exc:
        return _login_page(exc.message, status=429, headers=exc.headers)
    try:
        session = await Identities(state).login(value)
    except LoginRefused as exc:
        state.logins.failed(address, "gateway login")
        return _login_page(exc.message, status=401)
    return _logged_in(request, session)


async def _session(request: Request) -> Session | None:
    return await Identities(_state(request)).session(request.cookies.get(COOKIE))


def _stranger(request: Request) -> Response:
    path = request.url.path
    if request.method in ("GET", "HEAD") and not path.startswith(API_PREFIXES):
        return RedirectResponse("/login", status_code=302)
    return _json(401, {"detail": "Log in to the chat2api gateway first.", "login": "/login"})


def _expires(session: Session) -> str:
    moment = datetime.fromtimestamp(session.created + SESSION_TTL, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


# ------------------------------------------------------------------ seed API


class SeedBody(BaseModel):
    """``{"seed", "token"}`` or ``{"seed", "account_id"}``."""

    model_config = ConfigDict(extra="forbid")

    seed: str
    token: str | None = None
    account_id: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> SeedBody:
        if not self.seed.strip():
            raise ValueError("seed must not be empty")
        if (self.token is None) == (self.account_id is None):
            raise ValueError("give exactly one of token and account_id")
        return self


def _shown(seed: str, record: dict[str, Any]) -> dict[str, Any]:
    """A seed record without its secret: the account id, or the token's fingerprint."""
    out: dict[str, Any] = {"seed": seed, "created": record.get("created")}
    if record.get("account_id") is not None:
        out["account_id"] = record["account_id"]
    else:
        out["token"] = fingerprint(str(record.get("token", "")))
        out["workspace"] = record.get("workspace")
    return out


async def list_seeds(request: Request) -> Response:
    """Every seed and what it is bound to (no secrets)."""
    state = require_admin(request)
    seeds = await Identities(state).seeds()
    return json_response(
        {"seeds": [_shown(seed, record) for seed, record in sorted(seeds.items())]}
    )


async def bind_seed(request: Request) -> Response:
    """Bind a seed to a pool account or to a token."""
    state = require_admin(request)
    body = await read_body(request, SeedBody, '{"seed", "token" | "account_id"}')
    seed = body.seed.strip()
    try:
        record = await Identities(state).bind_seed(
            seed, account_id=body.account_id, token=body.token
        )
    except LoginRefused as exc:
        raise InvalidRequest(exc.message, param="token") from exc
    return json_response(_shown(seed, record))


async def delete_seed(request: Request) -> Response:
    """Forget a seed (its browsers are logged out at their next request)."""
    state = require_admin(request)
    seed = request.path_params["seed"]
    if not await Identities(state).unbind_seed(seed):
        raise HTTPException(404)
    return json_response({"removed": seed})


seed_routes = [
    methods("/gateway/api/seeds", {"GET": list_seeds, "POST": bind_seed}),
    Route("/gateway/api/seeds/{seed}", delete_seed, methods=["DELETE"]),
]


# --------------------------------------------------------------------- pages


def gateway_routes(settings: Settings) -> list[BaseRoute]:
    """Every gateway route; mount them after all other routes."""
    prefix = settings.prefix_path
    reserved = tuple(f"{prefix}/{name}" for name in ("v1/", "tokens", "gateway/"))

    async def login_page(request: Request) -> Response:
        """The login form."""
        return _login_page()

    async def login_form(request: Request) -> Response:
        """Log in with the form's ``token`` field (posted from this site only: login CSRF)."""
        if from_foreign_site(request):
            return _login_page(_CROSS_SITE_LOGIN, status=403)
        form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
        return await _login(request, (form.get("token") or [""])[0])

    async def logout(request: Request) -> Response:
        """End the session and go back to the login page."""
        sid = request.cookies.get(COOKIE)
        if from_foreign_site(request):  # another site's link does not log anyone out
            return RedirectResponse("/", status_code=302)
        if sid:
            await Identities(_state(request)).logout(sid)
        response = RedirectResponse("/login", status_code=302)
        response.delete_cookie(
            COOKIE, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https"
        )
        return response

    async def auth_session(request: Request) -> Response:
        """The web app's session, with a placeholder token and no real identity."""
        session = await _session(request)
        identities = Identities(_state(request))
        if session is not None and session.seed is not None:
            try:
                await identities.seed_binding(session.seed)
            except LoginRefused:
                await identities.logout(session.id)
                session = None
        if session is None:
            return _stranger(request)
        body = {
            "user": {
                "id": "user-chat2api",
                "name": session.name,
                "email": "user@chat2api.local",
                "image": None,
                "picture": None,
                "idp": "chat2api",
                "iat": int(session.created),
                "mfa": False,
                "groups": [],
            },
            "expires": _expires(session),
            "accessToken": PLACEHOLDER_TOKEN,
            "authProvider": "chat2api",
        }
        response = _json(200, body)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def proxy(request: Request) -> Response:
        """Everything else: the upstream web app, as the session's account."""
        try:
            url_path = request_path(request.scope["path"], request.scope.get("raw_path"))
        except BadPath as exc:
            return _json(400, {"detail": str(exc)})
        if url_path.startswith(reserved):
            raise HTTPException(404)  # chat2api's own namespaces: never the upstream
        token = request.query_params.get("token")
        if url_path == "/" and request.method == "GET" and token is not None:
            if from_foreign_site(request):  # a link on another site: confirm here first
                return _login_page(_CROSS_SITE_LINK, value=token)
            return await _login(request, token)
        session = await _session(request)
        if session is None:
            return _stranger(request)
        if request.method not in _SAFE and from_foreign_site(request):
            return _json(403, {"detail": "Cross-site requests are refused by the gateway."})
        rule = blocked(request.method, url_path)
        if rule is not None:
            return _json(rule.status, rule.body)
        state = _state(request)
        identities = Identities(state)
        try:
            credentials, account_id = await identities.credentials(session)
        except LoginRefused:  # its seed was removed since: the session is over
            await identities.logout(session.id)
            return _stranger(request)

        async def lease_for(model: str) -> PoolLease:
            assert account_id is not None
            return await identities.lease(account_id, model)

        return await Forwarder(state).forward(
            request, url_path, credentials, lease_for if account_id is not None else None
        )

    return [
        *prefixed(prefix, seed_routes),
        methods("/login", {"GET": login_page, "POST": login_form}),
        Route("/auth/logout", logout, methods=["GET"]),
        Route("/api/auth/session", auth_session, methods=["GET"]),
        Route(
            "/{path:path}",
            proxy,
            methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        ),
    ]
