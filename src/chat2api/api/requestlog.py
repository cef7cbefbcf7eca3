"""One log line per request, and the request id that ties it to the client.

``RequestLog`` wraps the whole HTTP app: it takes the client's
``X-Request-Id`` (or makes one), returns it on the response, and when the
response has ended writes one INFO line on the ``chat2api.request`` logger:
method, path, status, duration, model, account fingerprint, request id, and
for a failure its code and message (the one place a 4xx/5xx reason is
logged). Endpoints add what only they know with ``note`` (the model, the
account that answered) and ``note_error`` (what the client was told). The
record lives in a context variable, so nothing is threaded through the
layers. Secrets never reach it: accounts appear as fingerprints, and the
path segments that are keys themselves (download tokens, gateway seeds) are
replaced by a fingerprint too.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.types import Message, Receive, Scope, Send

from chat2api.convert.messages import random_uuid_hex

__all__ = ["REQUEST_ID_HEADER", "RequestLog", "RequestRecord", "note", "note_error"]

log = logging.getLogger("chat2api.request")

REQUEST_ID_HEADER = "X-Request-Id"
_ID_OK = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}\Z")
# Path segments that are secrets: what follows these prefixes is a key.
_SECRET_AFTER = ("/v1/files/download/", "/gateway/api/seeds/")

HttpApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:10]


def safe_path(path: str) -> str:
    """``path`` with secret segments (download tokens, seeds) replaced by a fingerprint."""
    for prefix in _SECRET_AFTER:
        at = path.find(prefix)
        if at >= 0:
            head = path[: at + len(prefix)]
            secret, _, rest = path[at + len(prefix) :].partition("/")
            return f"{head}<{_fingerprint(secret)}>" + (f"/{rest}" if rest else "")
    return path


@dataclass(slots=True)
class RequestRecord:
    """What the line of one request says; endpoints fill in what they know."""

    request_id: str
    method: str
    path: str
    model: str | None = None
    account: str | None = None
    status: int | None = None
    error_code: str | None = None
    error_message: str | None = None

    def fields(self, duration_ms: float) -> dict[str, object]:
        out: dict[str, object] = {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "duration_ms": round(duration_ms, 1),
            "model": self.model,
            "account": self.account,
            "request_id": self.request_id,
        }
        if self.error_code is not None or self.error_message is not None:
            out["error_code"] = self.error_code
            out["error"] = self.error_message
        return out


_current: contextvars.ContextVar[RequestRecord | None] = contextvars.ContextVar(
    "chat2api_request", default=None
)


def current() -> RequestRecord | None:
    """The record of the request being served (None outside one)."""
    return _current.get()


def note(*, model: str | None = None, account: str | None = None) -> None:
    """Add the model asked for and the fingerprint of the account that answers."""
    record = _current.get()
    if record is None:
        return
    if model is not None:
        record.model = model
    if account is not None:
        record.account = account


def note_error(code: str | None, message: str) -> None:
    """What the client was told went wrong (an error response or a stream's error event)."""
    record = _current.get()
    if record is not None:
        record.error_code, record.error_message = code, message


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id":
            given: str = value.decode("latin-1")
            if _ID_OK.match(given):
                return given
            break
    return "req_" + random_uuid_hex()


class RequestLog:
    """The ASGI wrapper: the request id in, the same id out, one line at the end."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send, app: HttpApp) -> None:
        record = RequestRecord(_request_id(scope), scope.get("method", ""), scope.get("path", ""))
        record.path = safe_path(record.path)
        header = (b"x-request-id", record.request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = _current.set(record)
        started = time.perf_counter()
        try:
            await app(scope, receive, send_with_id)
        finally:
            _current.reset(token)
            if record.status is None:
                record.status = 500  # the app raised before answering: the server sends a 500
            if log.isEnabledFor(logging.INFO):
                fields = record.fields((time.perf_counter() - started) * 1000)
                log.info(_line(fields), extra={"fields": fields})


def _line(fields: dict[str, object]) -> str:
    parts = [f"{fields['method']} {fields['path']} {fields['status']} {fields['duration_ms']}ms"]
    parts.extend(
        f"{key}={value}"
        for key in ("model", "account", "request_id")
        if (value := fields.get(key)) is not None
    )
    if "error_code" in fields:
        parts.append(f"error={fields['error_code']}: {fields['error']}")
    return " ".join(parts)
