"""The simulated ChatGPT web backend as a Starlette app (spec sections 1–7): the route table.

The handlers live by concern: send.py (the conversation POST of both eras),
sentinel.py (E2 chat-requirements), e3.py (the rest of the E3 send path),
history_routes.py (reading kept conversations), file_routes.py (files and
attachments), account_routes.py (session, me, models), oauth.py (the refresh
endpoint, so one base URL stands in for both chatgpt.com and auth.openai.com),
control.py (the `/_sim/` routes tests drive it with) and webapp.py (the page
and the account/settings stubs).

Most backend routes are served under both `/backend-api` (bearer token) and
`/backend-anon` (device id); `BACKEND` lists each once with the prefixes it
has, and the handler tells the two apart by the request path (`common.identify`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from chat2api.sim import (
    account_routes,
    control,
    e3,
    file_routes,
    history_routes,
    oauth,
    send,
    sentinel,
    webapp,
)
from chat2api.sim.config import SimConfig
from chat2api.sim.state import SimState
from chat2api.sim.streaming import EXTENSION

BOTH = ("/backend-api", "/backend-anon")
API = ("/backend-api",)

# (method, path below the prefix, handler, prefixes it is served under)
BACKEND: tuple[tuple[str, str, Callable[..., Any], tuple[str, ...]], ...] = (
    ("GET", "/me", account_routes.me, API),
    ("GET", "/models", account_routes.models, BOTH),
    ("POST", "/sentinel/chat-requirements", sentinel.chat_requirements, BOTH),
    ("POST", "/conversation", send.conversation, BOTH),
    ("POST", "/f/conversation", send.f_conversation, BOTH),
    ("POST", "/sentinel/chat-requirements/prepare", e3.sentinel_prepare, BOTH),
    ("POST", "/sentinel/chat-requirements/finalize", e3.sentinel_finalize, BOTH),
    ("POST", "/f/conversation/prepare", e3.conduit_prepare, BOTH),
    ("POST", "/f/conversation/resume", e3.resume, BOTH),
    ("POST", "/stop_conversation", e3.stop_conversation, BOTH),
    ("GET", "/conversation/{id}/stream_status", e3.stream_status, BOTH),
    ("GET", "/conversation/{id}", history_routes.get_conversation, BOTH),
    ("GET", "/conversations", history_routes.list_conversations, BOTH),
    (
        "GET",
        "/conversation/{cid}/attachment/{file_id}/download",
        file_routes.attachment_download,
        BOTH,
    ),
    ("GET", "/conversation/{cid}/interpreter/download", file_routes.interpreter_download, BOTH),
    ("POST", "/files", file_routes.create_file, API),
    ("GET", "/files/download/{file_id}", file_routes.file_download, API),
    ("GET", "/files/{file_id}", file_routes.get_file, API),
    ("POST", "/files/{file_id}/uploaded", file_routes.file_uploaded, API),
    ("GET", "/files/{file_id}/download", file_routes.file_download, BOTH),
)


def other_routes() -> list[Route]:
    """The routes outside the backend prefixes: session, OAuth, blobs and the `/_sim/` controls."""
    return [
        Route("/api/auth/session", account_routes.session, methods=["GET"]),
        Route("/oauth/token", oauth.oauth_token, methods=["POST"]),
        Route("/_blob/{file_id}", file_routes.blob_put, methods=["PUT"]),
        Route("/_blob/{file_id}", file_routes.blob_get, methods=["GET"]),
        Route("/_sim/files", file_routes.admin_files, methods=["GET"]),
        Route("/_sim/requests", control.admin_requests, methods=["GET"]),
        Route("/_sim/stats", control.admin_stats, methods=["GET"]),
        Route("/_sim/reset", control.admin_reset, methods=["POST"]),
        Route("/_sim/config", control.admin_config, methods=["GET", "POST"]),
        Route("/_sim/faults", control.admin_faults, methods=["POST"]),
        Route("/_sim/script", control.admin_script, methods=["GET", "POST"]),
        Route("/_sim/last_prompt", control.admin_last_prompt, methods=["GET"]),
        Route("/_sim/accounts", control.admin_accounts, methods=["POST"]),
    ]


class SimApp(Starlette):
    """Starlette, plus the server's raw `send` in the scope (needed to reset connections)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Expose the server's own `send` before Starlette's middleware wraps it."""
        if scope["type"] == "http":
            scope.setdefault("extensions", {})[EXTENSION] = {"raw_send": send}
        await super().__call__(scope, receive, send)


def routes() -> list[Route]:
    """Every route of the simulator: the web app's, `BACKEND` under its prefixes, the others."""
    return [
        *webapp.routes(),
        *(
            Route(prefix + path, handler, methods=[method])
            for method, path, handler, prefixes in BACKEND
            for prefix in prefixes
        ),
        *other_routes(),
    ]


def create_sim_app(config: SimConfig | None = None) -> SimApp:
    """Build the simulator; its state is reachable as `app.state.sim` (a SimState)."""
    cfg = config or SimConfig()
    cfg.validate()
    app = SimApp(routes=routes())
    app.state.sim = SimState(config=cfg)
    return app
