"""``HeadWithBody``: a response's head and body in one write, the same bytes in the same order."""

from __future__ import annotations

import asyncio
from typing import Any

from chat2api.connections import HeadWithBody


class Wire:
    """The transport end of a connection: what was written, in which writes."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None


def _transport(wire: Wire) -> HeadWithBody:
    return HeadWithBody(wire, asyncio.get_running_loop())  # type: ignore[arg-type]


def test_head_and_body_of_one_step_go_in_one_write() -> None:
    async def go() -> list[bytes]:
        wire = Wire()
        transport = _transport(wire)
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(memoryview(b"body"))
        transport.write(b"more")
        await asyncio.sleep(0)
        return wire.writes

    assert asyncio.run(go()) == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"more"]


def test_a_head_alone_goes_at_the_end_of_the_step() -> None:
    async def go() -> tuple[list[bytes], list[bytes]]:
        wire = Wire()
        transport = _transport(wire)
        transport.write(b"head")
        before = list(wire.writes)
        await asyncio.sleep(0)
        transport.write(b"chunk")
        return before, wire.writes

    assert asyncio.run(go()) == ([], [b"head", b"chunk"])


def test_close_and_abort_send_the_held_head_first() -> None:
    async def go() -> tuple[list[bytes], bool, list[bytes], bool, Any]:
        closing, aborting = Wire(), Wire()
        first, second = _transport(closing), _transport(aborting)
        first.write(b"head")
        first.close()
        second.write(b"head")
        second.abort()
        await asyncio.sleep(0)  # nothing more is written after the end
        return (
            closing.writes,
            closing.closed,
            aborting.writes,
            aborting.aborted,
            (first.get_extra_info("peername")),
        )

    assert asyncio.run(go()) == ([b"head"], True, [b"head"], True, ("127.0.0.1", 1))


def test_a_head_held_when_the_transport_starts_closing_still_goes() -> None:
    """The connection closed under the response (the client ended its side, seen in another
    callback of the step): the held head is written as uvicorn had already written it."""

    async def go() -> list[bytes]:
        wire = Wire()
        transport = _transport(wire)
        transport.write(b"head")
        wire.close()  # the server's transport, not through the wrapper
        await asyncio.sleep(0)
        return wire.writes

    assert asyncio.run(go()) == [b"head"]
