"""``GET /health`` (the process answers) and ``GET /ready`` (it can serve).

Both live outside ``API_PREFIX`` and behind no key, for load balancers and
orchestrators; neither tells a secret, a URL or an account. Ready means the
store answers and the first upstream base URL answers HTTP at all (any
status: a Cloudflare page still proves the network path). The upstream
check is remembered for ``UPSTREAM_CHECK_SECONDS`` so that a probe every
second does not become a request to the upstream every second.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chat2api import __version__
from chat2api.api.routing import json_response, methods
from chat2api.errors import StoreUnavailable, UpstreamError
from chat2api.state import AppState
from chat2api.store import store_errors
from chat2api.upstream.http import map_transport_errors

UPSTREAM_CHECK_SECONDS = 10.0
UPSTREAM_CHECK_TIMEOUT = 5.0


async def health(request: Request) -> Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok", "version": __version__})


async def _store_ok(state: AppState) -> bool:
    try:
        await state.store.version()
    except StoreUnavailable:
        return False
    except store_errors():
        return False
    return True


class UpstreamProbe:
    """Whether the first upstream base URL answers, remembered for a few seconds."""

    def __init__(self) -> None:
        self._until = 0.0
        self._ok = False

    async def ok(self, state: AppState) -> bool:
        if self._until > time.monotonic():
            return self._ok
        target = state.backend.next_target()
        try:
            with map_transport_errors("the readiness check"):
                await state.backend.session(target).fetch(
                    "HEAD", target.base_url + "/", timeout=UPSTREAM_CHECK_TIMEOUT
                )
            self._ok = True
        except UpstreamError:
            self._ok = False
        self._until = time.monotonic() + UPSTREAM_CHECK_SECONDS
        return self._ok


def health_routes() -> list[Route]:
    """``/health`` and ``/ready``, mounted at the root whatever ``API_PREFIX`` is."""
    probe = UpstreamProbe()

    async def ready(request: Request) -> Response:
        """Readiness: the store and the upstream are reachable (503 naming which is not)."""
        state: AppState = request.app.state.chat2api
        checks = {
            "store": "ok" if await _store_ok(state) else "unavailable",
            "upstream": "ok" if await probe.ok(state) else "unreachable",
        }
        good = all(v == "ok" for v in checks.values())
        return json_response(
            {"status": "ready" if good else "not_ready", "checks": checks},
            200 if good else 503,
            headers={"Cache-Control": "no-store"},
        )

    return [methods("/health", {"GET": health}), methods("/ready", {"GET": ready})]
