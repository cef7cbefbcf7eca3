"""Cross-origin access to the OpenAI API routes, for chat front ends running in a browser.

The original chat2api answered every origin, so a front end that calls it
from the browser (the API key in the page) keeps working after a switch.
``CORS_ALLOW_ORIGINS`` (comma list, default ``*``; ``none`` switches it off)
names the origins let in. Only the API routes under ``{API_PREFIX}/v1/`` take
part: the token page and the gateway (a cookie session) never answer another
origin, and no answer allows credentials (cookies): the API authenticates
by header.

:class:`Cors` is applied by ``chat2api.app.Chat2APIApp`` ahead of routing, so
the two streaming endpoints served directly get it too. A preflight
(``OPTIONS`` with ``Access-Control-Request-Method``) is answered at once; an
actual request from a browser gets ``Access-Control-Allow-Origin`` added to
its response headers. Requests without an ``Origin`` header (SDKs, curl) are
not touched.

Why not Starlette's ``CORSMiddleware``: it looks the request's ``Origin`` up
in the scope's header list when the response starts, and by then the direct
endpoints have emptied that list (the client's token is in it; see
``Chat2APIApp._serve_direct``), so their answers lost the header. Here the
allowed origin is decided before the request is routed.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import Message, Scope, Send

__all__ = ["Cors"]

_ALLOWED_METHODS = b"GET, POST, DELETE, OPTIONS"
_MAX_AGE = b"600"


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class Cors:
    """Which origins may call the API routes, and the headers that say so."""

    def __init__(self, origins: Sequence[str], prefix: str) -> None:
        self._any = "*" in origins
        self._origins = frozenset(origin.rstrip("/").encode("latin-1") for origin in origins)
        self._path = f"{prefix}/v1/"

    @property
    def enabled(self) -> bool:
        """Whether any origin is let in."""
        return bool(self._origins)

    def allowed(self, scope: Scope) -> bytes | None:
        """The ``Access-Control-Allow-Origin`` value for this request, if it gets one."""
        if not self._origins or not scope["path"].startswith(self._path):
            return None
        origin = _header(scope, b"origin")
        if origin is None:
            return None
        if self._any:
            return b"*"
        return origin if origin in self._origins else None

    @staticmethod
    def is_preflight(scope: Scope) -> bool:
        """An ``OPTIONS`` request a browser sends before the real one."""
        return scope["method"] == "OPTIONS" and (
            _header(scope, b"access-control-request-method") is not None
        )

    @staticmethod
    async def preflight(scope: Scope, send: Send, allow: bytes) -> None:
        """Answer a preflight: 204, the methods, and the headers the browser asked for."""
        headers = [
            (b"access-control-allow-origin", allow),
            (b"access-control-allow-methods", _ALLOWED_METHODS),
            (b"access-control-max-age", _MAX_AGE),
            (b"content-length", b"0"),
        ]
        asked = _header(scope, b"access-control-request-headers")
        if asked:
            headers.append((b"access-control-allow-headers", asked))
        if allow != b"*":
            headers.append((b"vary", b"Origin"))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    def wrap(send: Send, allow: bytes) -> Send:
        """``send``, with the allow-origin header put on the response's start."""
        extra = [(b"access-control-allow-origin", allow)]
        if allow != b"*":
            extra.append((b"vary", b"Origin"))

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        return send_with_cors
