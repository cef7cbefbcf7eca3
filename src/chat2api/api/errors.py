"""The OpenAI error envelope for every failure, by exception class."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from chat2api.api.requestlog import note_error
from chat2api.errors import Chat2APIError, InvalidRequest

log = logging.getLogger(__name__)

RequestModel = TypeVar("RequestModel", bound=BaseModel)


def error_response(exc: Chat2APIError) -> Response:
    """A JSON response carrying the OpenAI error envelope."""
    return Response(
        orjson.dumps(exc.to_dict()),
        status_code=exc.status_code,
        media_type="application/json",
        headers=exc.headers,
    )


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none", "literal"})


def param_from_loc(loc: Sequence[int | str]) -> str | None:
    """``("messages", 0, "content")`` → ``messages[0].content``.

    Pydantic adds union-member tags (``str``, ``list[...]``, ``TextPart``) to
    locations; those are not parameters and are dropped.
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif (
            (part == "body" and not out)
            or part in _TYPE_TAGS
            or "[" in part
            or "-" in part
            or part[:1].isupper()
        ):
            continue
        else:
            out += f".{part}" if out else part
    return out or None


def parse_request(raw: bytes, model: type[RequestModel]) -> RequestModel:
    """A request body read into its pydantic ``model``, or the 400 saying what is wrong."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. The body must be a JSON "
            "object (Content-Type: application/json).",
            code="invalid_json",
        ) from exc
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_from_validation(exc.errors()) from exc


def invalid_from_validation(errors: Sequence[Any]) -> InvalidRequest:
    """The first pydantic error as a 400 naming its ``param``."""
    first = errors[0]
    loc = tuple(first.get("loc", ()))
    param = param_from_loc(loc)
    message = str(first.get("msg", "Invalid value"))
    if first.get("type") == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
    where = f" for '{param}'" if param else ""
    return InvalidRequest(f"Invalid value{where}: {message}", param=param)


def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 404:
        err = InvalidRequest(
            f"Unknown request URL: {request.method} {request.url.path}.", code="unknown_url"
        )
        return Response(orjson.dumps(err.to_dict()), status_code=404, media_type="application/json")
    body = {
        "error": {
            "message": str(exc.detail),
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    return Response(
        orjson.dumps(body),
        status_code=exc.status_code,
        media_type="application/json",
        headers=exc.headers,
    )


def _internal_error(exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    body = {
        "error": {
            "message": "chat2api hit an internal error; the log has the details.",
            "type": "server_error",
            "param": None,
            "code": "internal_error",
        }
    }
    return Response(orjson.dumps(body), status_code=500, media_type="application/json")


def response_for_error(request: Request, exc: Exception) -> Response:
    """The OpenAI-envelope response for any exception a handler raised.

    What the client is told is noted for the request's log line
    (``api.requestlog``): the one place the reason of a 4xx/5xx is logged.
    """
    if isinstance(exc, ClientDisconnect):
        # Nobody is left to answer: one line, not an error with a traceback.
        log.info(
            "client left before sending the whole body: %s %s", request.method, request.url.path
        )
        return Response(status_code=400)
    if isinstance(exc, ValidationError):
        exc = invalid_from_validation(exc.errors())
    if isinstance(exc, Chat2APIError):
        note_error(exc.code, exc.message)
        return error_response(exc)
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            note_error("unknown_url", f"Unknown request URL: {request.method} (path above).")
        else:
            note_error(None, str(exc.detail))
        return _http_error(request, exc)
    note_error("internal_error", f"{type(exc).__name__} (traceback logged)")
    return _internal_error(exc)


def install_error_handlers(app: Starlette) -> None:
    """Register ``response_for_error`` for every exception class."""

    async def handler(request: Request, exc: Exception) -> Response:
        return response_for_error(request, exc)

    for kind in (Chat2APIError, ValidationError, HTTPException, ClientDisconnect, Exception):
        app.add_exception_handler(kind, handler)
