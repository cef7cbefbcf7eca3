"""The simulator's minimal web app and the account endpoints a gateway must block.

`GET /` is the app page (it keeps the bootstrap bits a client scrapes: the
`data-build` attribute and three `cdn.oaistatic.com` script URLs, marked
`type="text/plain"` so a browser does not fetch them); `/assets/app.js` and
`/assets/app.css` come from `chat2api/sim/static/`. The stubs answer 200 JSON
without any check and are counted in `SimState.hits` and recorded, so a test
can tell whether such a request got past a gateway.
"""

from __future__ import annotations

import functools
import html
import importlib.resources
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from chat2api.sim import faults
from chat2api.sim.common import headers_of, parse_json, sim_state

ASSET_TYPES = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
ASSET_CACHE_CONTROL = "public, max-age=600"


def count_hit(request: Request, body: object = None) -> None:
    """Count a request in `hits` (by path) and record it like the others."""
    state = sim_state(request)
    path = request.url.path
    state.hits[path] = state.hits.get(path, 0) + 1
    state.record(path, request.method, headers_of(request), body)


async def home(request: Request) -> Response:
    """GET / — the app page; also what a client scrapes for the build id and script URLs."""
    state = sim_state(request)
    state.stats.home += 1
    build = html.escape(state.config.build_id)
    tag = build.removeprefix("prod-")[:8]
    pow_hash = html.escape(state.config.pow_hash)
    cdn = "https://cdn.oaistatic.com/assets"
    page = (
        f'<!DOCTYPE html><html data-build="{build}" lang="en-US"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="sim-pow-hash" content="{pow_hash}">'
        '<title>ChatGPT</title><link rel="icon" href="data:,">'
        '<link rel="stylesheet" href="/assets/app.css">'
        f'<script src="{cdn}/manifest-{tag}.js" type="text/plain"></script>'
        f'<script src="{cdn}/entry.client-{tag}.js" type="text/plain"></script>'
        f'<script src="{cdn}/root-{tag}.js" type="text/plain"></script>'
        "</head><body>"
        '<header><span id="user-name"></span> <a id="logout" href="/auth/logout">Log out</a>'
        "</header><main>"
        '<textarea id="prompt" rows="4" placeholder="Message ChatGPT"></textarea>'
        '<button id="send" type="button" disabled>Send</button>'
        '<div id="status">idle</div>'
        '<div id="answer"></div>'
        '</main><div id="root"></div><script src="/assets/app.js"></script></body></html>'
    )
    return Response(page, media_type="text/html; charset=utf-8")


@functools.cache
def asset_bytes(name: str) -> bytes:
    """The packaged static file `name` (one of ASSET_TYPES)."""
    return importlib.resources.files("chat2api.sim").joinpath("static", name).read_bytes()


async def asset(request: Request) -> Response:
    """GET /assets/{name} — app.js and app.css, else 404."""
    name = request.path_params["name"]
    media = ASSET_TYPES.get(name)
    if media is None:
        return faults.json_response(404, {"detail": "Not Found"})
    return Response(
        asset_bytes(name), media_type=media, headers={"cache-control": ASSET_CACHE_CONTROL}
    )


async def logout(request: Request) -> Response:
    """GET /auth/logout — 302 to `/` (a gateway answers this path itself)."""
    count_hit(request)
    return RedirectResponse("/", status_code=302)


def _answer(body: dict[str, Any]) -> Callable[[Request], Any]:
    async def handler(request: Request) -> Response:
        count_hit(request, parse_json(await request.body()))
        return faults.json_response(200, {**body, "sim_stub": True})

    return handler


ACCOUNT = {"id": "acc-sim", "plan_type": "plus", "structure": "personal"}
STUBS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "GET",
        "/backend-api/accounts/check/v4-2023-04-27",
        {"accounts": {"default": {"account": ACCOUNT, "features": []}}, "account_ordering": []},
    ),
    ("POST", "/backend-api/accounts/deactivate", {"success": True}),
    ("POST", "/backend-api/accounts/logout_all", {"success": True}),
    ("GET", "/backend-api/settings/user", {"settings": {}}),
    ("PATCH", "/backend-api/settings/account_user_setting", {"success": True}),
    ("POST", "/backend-api/accounts/data_export", {"status": "queued"}),
    ("GET", "/backend-api/shared_conversations", {"items": [], "total": 0, "limit": 50}),
    ("PATCH", "/backend-api/shared_conversations/{id}", {"success": True}),
    ("GET", "/backend-api/memories", {"memories": [], "memory_num_tokens": 0}),
    ("DELETE", "/backend-api/memories", {"success": True}),
    ("POST", "/backend-api/user_system_messages", {"enabled": True, "about_user_message": ""}),
    ("GET", "/backend-api/payments/customer_portal", {"url": "https://pay.example.invalid/sim"}),
    ("GET", "/backend-api/subscriptions", {"plan_type": "plus", "id": "sub-sim"}),
]


async def admin_hits(request: Request) -> Response:
    """GET /_sim/hits — `{"hits": {path: count}}` of the counted web-app and stub requests."""
    return faults.json_response(200, {"hits": dict(sim_state(request).hits)})


def routes() -> list[Route]:
    """The web app's routes (the page, its assets, logout) and the stubs."""
    out = [
        Route("/", home, methods=["GET"]),
        Route("/assets/{name}", asset, methods=["GET"]),
        Route("/auth/logout", logout, methods=["GET"]),
        Route("/_sim/hits", admin_hits, methods=["GET"]),
    ]
    out.extend(Route(path, _answer(body), methods=[method]) for method, path, body in STUBS)
    return out
