"""``Chat2APIApp``'s direct endpoints: dispatch, methods and errors, over ASGI."""

from __future__ import annotations

import gc
import logging
import weakref
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chat2api.api.errors import install_error_handlers
from chat2api.api.routing import json_response
from chat2api.api.streaming import EventStream
from chat2api.app import Chat2APIApp
from chat2api.errors import InvalidRequest

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


async def _invalid(request: Request) -> Response:
    raise InvalidRequest("messages must not be empty.", param="messages")


async def _broken(request: Request) -> Response:
    raise RuntimeError("a bug with a secret-looking detail")


async def _outlived(request: Request) -> Response:
    """A stream that reports whether its request (and body) is still in memory."""
    body = await request.body()
    alive = weakref.ref(request)

    async def report() -> AsyncIterator[bytes]:
        gc.collect()
        yield b"request alive: %d, body %d bytes\n" % (alive() is not None, len(body))

    return EventStream(report())


async def _headers_kept(request: Request) -> Response:
    """A stream that reports how many request headers are still held while it runs."""
    server_list = request.scope["headers"]  # the server's own list, before Request copies it
    token = request.headers["authorization"]
    scope = request.scope

    async def report() -> AsyncIterator[bytes]:
        yield b"token %d chars; headers held: %d + %d\n" % (
            len(token),
            len(server_list),
            len(scope["headers"]),
        )

    return EventStream(report())


async def _routed(request: Request) -> Response:
    return json_response({"through": "router"})


def _app() -> Chat2APIApp:
    app = Chat2APIApp(
        direct={
            "/p/echo": _echo,
            "/p/invalid": _invalid,
            "/p/broken": _broken,
            "/p/outlived": _outlived,
            "/p/headers": _headers_kept,
        },
        routes=[Route("/p/routed", _routed, methods=["GET"])],
    )
    install_error_handlers(app)
    return app


@pytest.fixture
async def client(anyio_backend: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def test_direct_endpoint_gets_the_request(client: httpx.AsyncClient) -> None:
    response = await client.post("/p/echo", content=b"body bytes")
    assert response.status_code == 200
    assert response.content == b"body bytes"


async def test_other_paths_go_through_the_router(client: httpx.AsyncClient) -> None:
    assert (await client.get("/p/routed")).json() == {"through": "router"}
    missing = await client.get("/p/nothing")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_url"


async def test_wrong_method_is_405_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.get("/p/echo")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_chat2api_error_keeps_its_envelope(client: httpx.AsyncClient) -> None:
    response = await client.post("/p/invalid")
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "messages must not be empty.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": None,
        }
    }


async def test_unexpected_error_is_a_logged_500(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = await client.post("/p/broken")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert "secret" not in response.text
    assert any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in caplog.records)


async def test_request_is_released_before_the_stream_runs(client: httpx.AsyncClient) -> None:
    """A long stream does not keep its Request (nor its cached body) alive."""
    response = await client.post("/p/outlived", content=b"x" * 5000)
    assert response.status_code == 200
    assert response.text == "request alive: 0, body 5000 bytes\n"


async def test_request_headers_are_let_go_before_the_stream(client: httpx.AsyncClient) -> None:
    """The request's headers (bearer token included) are not held while the response streams."""
    response = await client.post("/p/headers", headers={"Authorization": "Bearer " + "t" * 900})
    assert response.status_code == 200
    assert response.text == "token 907 chars; headers held: 0 + 0\n"
