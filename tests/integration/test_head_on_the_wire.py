"""``HeadWithBody`` on a real connection: uvicorn's bytes, in order, whatever the client does."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import uvicorn

from chat2api.connections import ConnectionGuard
from loops import both_loops  # noqa: F401  (anyio_backend: asyncio and uvloop)

pytestmark = pytest.mark.anyio

LATE = 0.3  # how long the streamed answer's first chunk takes after its head


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/late":  # a stream whose head goes before its first chunk is ready
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(LATE)
        await send({"type": "http.response.body", "body": b"late", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    head = [(b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": head})
    await send({"type": "http.response.body", "body": b"ok"})


async def _exchange(port: int, request: bytes, *, half_close: bool) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    if half_close:
        writer.write_eof()  # the request is all this client sends
    received = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 2 * LATE + 1):
            received += chunk
    except (TimeoutError, ConnectionError):
        pass
    writer.close()
    return received


async def _served(request: bytes, *, half_close: bool, guarded: bool) -> bytes:
    guard = ConnectionGuard(max_connections=10, per_client=10, header_timeout=5)
    config = uvicorn.Config(
        _app,
        host="127.0.0.1",
        port=0,
        http=guard.protocol() if guarded else "httptools",
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    config.load()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    task = asyncio.ensure_future(server.serve(sockets=[listener]))
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        return await _exchange(port, request, half_close=half_close)
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize("path", ["/late", "/whole"])
async def test_a_client_that_half_closes_gets_what_plain_uvicorn_sends(path: str) -> None:
    """A client that ends its side after the request (shutdown(SHUT_WR)) gets the bytes
    plain uvicorn gives it: the asyncio transport closes at that end of input, so a head
    held for a later step would be lost where uvicorn wrote it at once."""
    request = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode()
    plain = await _served(request, half_close=True, guarded=False)
    guarded = await _served(request, half_close=True, guarded=True)
    assert plain.startswith(b"HTTP/1.1 200 OK\r\n")
    assert _without_date(guarded) == _without_date(plain)


async def test_pipelined_requests_answered_in_order_with_heads_and_bodies() -> None:
    """Pipelined HEAD, GET and a closing HEAD: each head before its body, in request order."""
    request = (
        b"HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
        b"HEAD /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    plain = await _served(request, half_close=False, guarded=False)
    guarded = await _served(request, half_close=False, guarded=True)
    assert plain.count(b"HTTP/1.1 200 OK\r\n") == 4
    assert _without_date(guarded) == _without_date(plain)


def _without_date(data: bytes) -> bytes:
    return b"\r\n".join(line for line in data.split(b"\r\n") if not line.startswith(b"date: "))
