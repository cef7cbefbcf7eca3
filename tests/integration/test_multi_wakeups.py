"""The multi driver wakes for every socket and deadline: no transfer waits for a poll."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from curl_cffi import Curl, CurlError, CurlOpt
from curl_cffi.const import CurlECode

from chat2api.upstream import curl
from chat2api.upstream.multi import Multi
from chat2api.upstream.transport import Session
from loops import both_loops  # noqa: F401  (anyio_backend: asyncio and uvloop)

pytestmark = pytest.mark.anyio

PAUSE = 1.2  # silence after the headers: far beyond AsyncCurl's 0.1 s poll


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"GET /pause "):  # headers, silence, then the body
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                await writer.drain()
                await asyncio.sleep(PAUSE)
                writer.write(b"5\r\nlater\r\n0\r\n\r\n")
            else:  # a short wait, so that answers of one burst end together
                await asyncio.sleep(0.05)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
    writer.close()


@pytest.fixture
async def base(anyio_backend: Any) -> AsyncIterator[str]:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()


async def test_a_stream_silent_after_its_headers_wakes_when_the_body_comes(base: str) -> None:
    session = Session(impersonate="chrome")
    try:
        started = time.monotonic()
        reply = await session.request("GET", base + "/pause", stream=True, timeout=10)
        body = [chunk async for chunk in reply.aiter_bytes()]
        elapsed = time.monotonic() - started
        assert body == [b"later"]
        assert PAUSE * 0.9 <= elapsed < PAUSE + 1.0
        # A transfer started while the other is silent is not held up by it.
        started = time.monotonic()
        quiet = await session.request("GET", base + "/pause", stream=True, timeout=10)
        _, answered = await session.fetch("GET", base + "/quick", timeout=10)
        assert answered == b"ok"
        assert time.monotonic() - started < PAUSE * 0.8
        assert [chunk async for chunk in quiet.aiter_bytes()] == [b"later"]
    finally:
        await session.aclose()
    assert session.watching == (0, False)


async def test_a_connect_that_never_completes_ends_at_its_deadline(anyio_backend: Any) -> None:
    """A listener that never accepts, its backlog full: no socket event ever comes, only
    libcurl's connect deadline, which must wake the loop by itself."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(4):  # fill the accept queue: later SYNs are dropped
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(listener.getsockname())
        fillers.append(filler)
    session = Session(impersonate="chrome")
    try:
        started = time.monotonic()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        with pytest.raises(CurlError) as info:
            await session.fetch("GET", url, timeout=(0.5, 10))
        assert info.value.code == CurlECode.OPERATION_TIMEDOUT
        assert 0.4 <= time.monotonic() - started < 2.0
    finally:
        await session.aclose()
        for filler in fillers:
            filler.close()
        listener.close()


class _Owner:
    """An easy handle's owner that may start the next transfer from its end."""

    def __init__(self, multi: Multi, url: str, ends: list[tuple[int, bytes]]) -> None:
        self.handle = Curl()
        self.easy = curl.easy_handle(self.handle)
        self.body = b""
        self.next: _Owner | None = None
        self._multi, self._ends = multi, ends
        self._callbacks = curl.easy_callbacks(self.easy, self._on_body, self._on_header, print)
        self.handle.setopt(CurlOpt.URL, url)

    def _on_body(self, data: Any, size: int, length: int, userdata: Any) -> int:
        self.body += curl.unpack(data, length)
        return length

    def _on_header(self, data: Any, size: int, length: int, userdata: Any) -> int:
        return length

    def transfer_done(self, code: int) -> None:
        self._ends.append((code, self.body))
        if self.next is not None:
            self._multi.add(self.next.easy, self.next)


async def _until(check: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds * 100)):
        if check() or time.monotonic() >= deadline:
            return
        await asyncio.sleep(0.01)


async def test_transfers_started_from_an_end_and_ending_together(base: str) -> None:
    multi = Multi(asyncio.get_running_loop(), 16)
    ends: list[tuple[int, bytes]] = []
    owners = [_Owner(multi, base + "/quick", ends) for _ in range(20)]
    try:
        chain = owners[:5]  # each started inside the previous one's transfer_done
        for first, second in itertools.pairwise(chain):
            first.next = second
        multi.add(chain[0].easy, chain[0])
        await _until(lambda: len(ends) == 5)
        assert ends == [(0, b"ok")] * 5
        ends.clear()
        for owner in owners[5:]:  # fifteen at once, answered after the same wait
            multi.add(owner.easy, owner)
        await _until(lambda: len(ends) == 15)
        assert ends == [(0, b"ok")] * 15
        assert multi.watching[1] is False  # no deadline left behind
    finally:
        multi.close()
        for owner in owners:
            owner.handle.close()
    assert multi.watching == (0, False)
