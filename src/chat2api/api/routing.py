"""What the route modules share: JSON answers, and routes under ``API_PREFIX``.

Every module that serves HTTP exports ``routes``, a list of Starlette
``Route`` objects with paths relative to the prefix; ``chat2api.app``
mounts them with :func:`prefixed`. Endpoints take the ``Request`` and
nothing else (path parameters are in ``request.path_params``); helpers such
as ``chat2api.admin.api.require_admin`` are called first thing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chat2api.errors import InvalidRequest

__all__ = ["Endpoint", "json_response", "methods", "prefixed", "public_base", "read_body"]

Endpoint = Callable[[Request], Awaitable[Response]]
M = TypeVar("M", bound=BaseModel)


def json_response(
    body: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``body`` as ``application/json`` (orjson)."""
    return Response(
        orjson.dumps(body), status_code=status_code, media_type="application/json", headers=headers
    )


async def read_body(request: Request, model: type[M], shape: str) -> M:
    """The request's JSON body as ``model``.

    A body that is not JSON at all is a 400 ``invalid_json`` showing
    ``shape``; JSON of the wrong shape raises pydantic's ``ValidationError``,
    which the error handlers answer with a 400 naming the field.
    """
    raw = await request.body()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            raise InvalidRequest(f"The body must be JSON: {shape}.", code="invalid_json") from exc
        raise


def methods(path: str, endpoints: Mapping[str, Endpoint]) -> Route:
    """One route for a path served by several methods (``{"GET": f, "POST": g}``).

    One route, not one per method, so that a 405 names every method the
    path takes in its ``Allow`` header. ``HEAD`` goes to the ``GET`` endpoint.
    """
    table = dict(endpoints)
    if "GET" in table:
        table.setdefault("HEAD", table["GET"])

    async def dispatch(request: Request) -> Response:
        return await table[request.method](request)

    return Route(path, dispatch, methods=list(table))


def prefixed(prefix: str, routes: Iterable[BaseRoute]) -> list[BaseRoute]:
    """``routes`` with ``prefix`` put before their paths ("" leaves them as they are)."""
    if not prefix:
        return list(routes)
    out: list[BaseRoute] = []
    for route in routes:
        if not isinstance(route, Route):
            raise TypeError(f"only plain routes can be prefixed, not {route!r}")
        methods = sorted(route.methods - {"HEAD"}) if route.methods else None
        out.append(Route(prefix + route.path, route.endpoint, methods=methods, name=route.name))
    return out


_BASES: dict[tuple[object, ...], str] = {}
_BASES_KEPT = 256  # the Host header is the client's: a bounded memo, emptied when full


def public_base(request: Request, prefix_path: str) -> str:
    """This service's URL as the client reached it, with the API prefix.

    ``request.base_url`` builds and parses a URL; it depends only on the
    scope's scheme, server, root path and ``Host`` header, so the result is
    remembered by those.
    """
    scope = request.scope
    host = None
    for name, value in scope["headers"]:
        if name == b"host":
            host = value
            break
    server = scope.get("server")
    key = (
        scope.get("scheme", "http"),
        host,
        tuple(server) if server is not None else None,
        scope.get("app_root_path", scope.get("root_path", "")),
        prefix_path,
    )
    base = _BASES.get(key)
    if base is None:
        if len(_BASES) >= _BASES_KEPT:
            _BASES.clear()
        base = _BASES[key] = str(request.base_url).rstrip("/") + prefix_path
    return base
