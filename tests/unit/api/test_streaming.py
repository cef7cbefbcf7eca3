"""``EventStream`` under uvicorn over loopback: what a finished stream leaves behind."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator

import httpx2 as httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chat2api.api.streaming import EventStream
from chat2api.sim.server import ThreadedServer


async def _three_events(request: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        for n in range(3):
            yield b"data: %d\n\n" % n

    return EventStream(body())


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    app = Starlette(routes=[Route("/s", _three_events, methods=["GET"])])
    config = uvicorn.Config(
        app, loop="asyncio", http="httptools", lifespan="off", log_level="warning"
    )
    with ThreadedServer(config, name="event-stream-test") as running:
        yield running


def test_finished_streams_leave_no_reference_cycles(server: ThreadedServer) -> None:
    """A finished stream is freed at once: nothing of it waits for the cycle collector.

    During a burst, request state in cycles lives until a full collection,
    which may be thousands of streams later.
    """
    with httpx.Client(base_url=server.base_url) as client:
        assert client.get("/s").text == "data: 0\n\ndata: 1\n\ndata: 2\n\n"  # warm
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(10):
                assert client.get("/s").text.endswith("data: 2\n\n")
            gc.collect()
            left = [type(o).__qualname__ for o in gc.garbage]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    assert "RequestResponseCycle" not in left
    assert "DisconnectWatch" not in left
    assert "Task" not in left
