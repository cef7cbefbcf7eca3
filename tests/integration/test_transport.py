"""The curl transport against a raw HTTP/1.1 server: methods, headers, streams, aborts, errors."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import json
import platform
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import brotli
import pytest
import zstandard
from curl_cffi import CurlError
from curl_cffi.const import CurlECode

from chat2api.errors import UpstreamConnectError, UpstreamTimeout, UpstreamUnavailable
from chat2api.heap import QUIET_TRANSFERS
from chat2api.upstream.http import (
    SessionPool,
    iter_body,
    map_transport_errors,
    open_stream,
)
from chat2api.upstream.transport import ACCEPT_ENCODING, Session, TransferAborted
from loops import both_loops  # noqa: F401  (anyio_backend: asyncio and uvloop)

pytestmark = pytest.mark.anyio

STREAM_CHUNKS = [f"chunk-{i:02d};".encode() for i in range(20)]
STREAM_PAUSE = 0.03
DEADLINE = 0.5  # the timeout the deadline tests give the client
SILENT_STALL = 10 * DEADLINE  # how long /silent waits for the client before it hangs up itself
TRUNCATED_CHUNKS = [b"first part;", b"second part;"]
ENCODED_BODY = json.dumps({"text": "a body the upstream compressed " * 40}).encode()
ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": zstandard.ZstdCompressor().compress,
}


@dataclass
class Seen:
    """One request as the server read it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int


@dataclass
class StreamEnd:
    """How a /stream answer ended: chunks written, and whether the client hung up first."""

    sent: int
    client_left: bool


@dataclass
class RawServer:
    """A minimal keep-alive HTTP/1.1 server on 127.0.0.1 that answers by path."""

    requests: list[Seen] = field(default_factory=list)
    streams: list[StreamEnd] = field(default_factory=list)
    silent_closed: int = 0  # /silent connections the client hung up
    silent_outlasted: int = 0  # /silent connections the server closed after SILENT_STALL
    ended_connections: int = 0  # closed by either side
    port: int = 0
    _connections: int = 0
    _server: asyncio.Server | None = None
    _handlers: dict[asyncio.Task[Any], asyncio.StreamWriter] = field(default_factory=dict)
    _stream_ended: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        handlers = list(self._handlers.items())
        for _, writer in handlers:
            writer.close()  # a handler waiting on this connection sees it end
        if handlers:
            await asyncio.wait([task for task, _ in handlers], timeout=5)

    async def wait_stream_end(self, seconds: float = 5.0) -> StreamEnd:
        await asyncio.wait_for(self._stream_ended.wait(), seconds)
        return self.streams[-1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = writer
        self._connections += 1
        connection = self._connections
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                request_line, *lines = head.decode("latin-1").split("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                self.requests.append(Seen(method, path, headers, body, connection))
                if not await self._answer(method, path, body, reader, writer):
                    return
        except ConnectionError:
            return
        finally:
            self.ended_connections += 1
            self._handlers.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(
        self,
        method: str,
        path: str,
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Write the answer; False when the connection is to be closed."""
        if path == "/echo":
            payload = json.dumps({"method": method, "length": len(body)}).encode()
            self._respond(writer, "200 OK", [("Content-Type", "application/json")], payload, method)
        elif path == "/cookie":
            cookies = [("Set-Cookie", "alpha=1; Path=/"), ("Set-Cookie", "beta=2; Path=/")]
            self._respond(writer, "200 OK", cookies, b"cookies set", method)
        elif path == "/continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
            self._respond(writer, "200 OK", [("X-Final", "yes")], b"after the interim", method)
        elif path == "/redirect":
            self._respond(writer, "302 Found", [("Location", "/echo")], b"", method)
        elif path == "/redirect307":
            self._respond(writer, "307 Temporary Redirect", [("Location", "/echo")], b"", method)
        elif path.startswith("/encoded/"):
            encoding = path.removeprefix("/encoded/")
            encoded = ENCODERS[encoding](ENCODED_BODY)
            self._respond(writer, "200 OK", [("Content-Encoding", encoding)], encoded, method)
        elif path == "/stream":
            return await self._stream(reader, writer)
        elif path == "/gzip-stream":
            return await self._stream(reader, writer, gzip_chunks=True)
        elif path == "/silent":
            try:
                await asyncio.wait_for(reader.read(), SILENT_STALL)  # until the client hangs up
            except TimeoutError:
                self.silent_outlasted += 1  # the client waited out the whole stall
                return False
            except ConnectionError:
                pass
            self.silent_closed += 1
            return False
        elif path == "/stall":  # headers and one chunk, then silence until the client leaves
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write(b"%x\r\n%s\r\n" % (len(STREAM_CHUNKS[0]), STREAM_CHUNKS[0]))
            await writer.drain()
            with contextlib.suppress(ConnectionError):
                await reader.read()
            self.silent_closed += 1
            return False
        elif path == "/truncated":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for chunk in TRUNCATED_CHUNKS:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                await asyncio.sleep(0.05)
            return False  # closed without the terminating chunk
        else:
            self._respond(writer, "404 Not Found", [], b"no such path", method)
        await writer.drain()
        return True

    @staticmethod
    def _respond(
        writer: asyncio.StreamWriter,
        status: str,
        headers: list[tuple[str, str]],
        body: bytes,
        method: str,
    ) -> None:
        lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        writer.write(head if method == "HEAD" else head + body)

    async def _stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gzip_chunks: bool = False
    ) -> bool:
        """Chunked answer in paced pieces; stops early (recorded) if the client hangs up.

        ``gzip_chunks``: one gzip stream, flushed after each piece, as a
        compressing edge sends an event stream.
        """
        hangup = asyncio.ensure_future(reader.read())  # ends at EOF or reset
        sent = 0
        client_left = False
        packer = zlib.compressobj(wbits=31) if gzip_chunks else None
        encoding = b"Content-Encoding: gzip\r\n" if gzip_chunks else b""
        try:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n%s\r\n" % encoding)
            for piece in STREAM_CHUNKS:
                await asyncio.sleep(STREAM_PAUSE)
                if hangup.done() or writer.is_closing():
                    client_left = True
                    break
                chunk = piece
                if packer is not None:
                    chunk = packer.compress(piece) + packer.flush(zlib.Z_SYNC_FLUSH)
                    if piece is STREAM_CHUNKS[-1]:
                        chunk += packer.flush()
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                sent += 1
            else:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except ConnectionError:
            client_left = True
        finally:
            hangup.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await hangup
            self.streams.append(StreamEnd(sent, client_left))
            self._stream_ended.set()
        return False  # the reader was drained for hang-up detection: no keep-alive


@pytest.fixture
async def server(anyio_backend: Any) -> AsyncIterator[RawServer]:
    """The raw server, on an ephemeral port of 127.0.0.1."""
    raw = RawServer()
    await raw.start()
    yield raw
    await raw.stop()


@pytest.fixture
async def session(anyio_backend: Any) -> AsyncIterator[Session]:
    """A Chrome-impersonating transport session, closed at teardown."""
    made = Session(impersonate="chrome")
    yield made
    await made.aclose()


async def _eventually(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_methods_and_bodies_in_sequence_reuse_one_handle(
    server: RawServer, session: Session
) -> None:
    """POST, GET, HEAD, PUT, DELETE, GET go out as sent, bodies only where given, on one handle."""
    url = server.url("/echo")
    replies = [
        await session.fetch("POST", url, data=b"posted body"),
        await session.fetch("GET", url),
        await session.fetch("HEAD", url),
        await session.fetch("PUT", url, data=b"put"),
        await session.fetch("DELETE", url),
        await session.fetch("GET", url),
    ]
    assert [r.method for r in server.requests] == ["POST", "GET", "HEAD", "PUT", "DELETE", "GET"]
    assert [r.body for r in server.requests] == [b"posted body", b"", b"", b"put", b"", b""]
    assert [r.headers.get("content-length") for r in server.requests] == [
        "11",
        None,
        None,
        "3",
        None,
        None,
    ]
    assert all("transfer-encoding" not in r.headers for r in server.requests)
    assert all("expect" not in r.headers for r in server.requests)
    assert [reply.status_code for reply, _ in replies] == [200] * 6
    bodies = [body for _, body in replies]
    assert json.loads(bodies[0]) == {"method": "POST", "length": 11}
    assert json.loads(bodies[1]) == {"method": "GET", "length": 0}
    assert bodies[2] == b""  # HEAD: Content-Length announced, no body read
    head_length = len(json.dumps({"method": "HEAD", "length": 0}))
    assert replies[2][0].headers.get("content-length") == str(head_length)
    assert json.loads(bodies[3]) == {"method": "PUT", "length": 3}
    assert json.loads(bodies[4]) == {"method": "DELETE", "length": 0}
    assert json.loads(bodies[5]) == {"method": "GET", "length": 0}
    assert {r.connection for r in server.requests} == {1}  # one kept-alive connection
    assert session.idle_handles == 1
    assert session.active == 0


async def test_repeated_headers_kept_and_cookies_never_sent_back(
    server: RawServer, session: Session
) -> None:
    """Both Set-Cookie values come back, lookups ignore case, and no Cookie is ever sent."""
    reply, body = await session.fetch("GET", server.url("/cookie"))
    assert body == b"cookies set"
    assert reply.headers.get_list("set-cookie") == ["alpha=1; Path=/", "beta=2; Path=/"]
    assert reply.headers.get_list("SET-COOKIE") == ["alpha=1; Path=/", "beta=2; Path=/"]
    assert reply.headers.get("SeT-CoOkIe") == "alpha=1; Path=/"
    assert "Set-Cookie" in reply.headers
    assert reply.headers.get("x-missing", "none") == "none"
    assert [kv for kv in reply.headers.multi_items() if kv[0] == "Set-Cookie"] == [
        ("Set-Cookie", "alpha=1; Path=/"),
        ("Set-Cookie", "beta=2; Path=/"),
    ]
    assert reply.headers.lower()["set-cookie"] == "alpha=1; Path=/"
    await session.fetch("GET", server.url("/echo"))
    await session.fetch("GET", server.url("/cookie"), headers={"Cookie": "mine=1"})
    await session.fetch("GET", server.url("/echo"))
    cookies = [r.headers.get("cookie") for r in server.requests]
    assert cookies == [None, None, "mine=1", None]


async def test_interim_100_answer_is_skipped(server: RawServer, session: Session) -> None:
    """A 100 Continue before the answer is passed over: the final status, headers and body."""
    reply = await session.request("POST", server.url("/continue"), data=b"x" * 100)
    assert reply.status_code == 200  # as returned, before the body is read
    assert reply.headers.get("x-final") == "yes"
    assert reply.headers.get("content-length") == str(len(b"after the interim"))
    assert await reply.aread() == b"after the interim"
    assert server.requests[0].body == b"x" * 100


async def test_fetch_reads_what_request_reads(server: RawServer, session: Session) -> None:
    """fetch and request give the same final status, headers and body: after a 100, after
    a followed redirect, and on one handle going from stream to fetch and back."""
    answers = []
    for _ in range(2):
        streamed = await session.request("GET", server.url("/stream"), stream=True, timeout=5)
        answers.append((streamed.status_code, streamed.headers.multi_items()))
        answers.append(await streamed.aread())
        reply, body = await session.fetch("POST", server.url("/continue"), data=b"x" * 100)
        answers.append((reply.status_code, reply.headers.multi_items(), body))
        reply, body = await session.fetch("GET", server.url("/redirect"), follow_redirects=True)
        answers.append((reply.status_code, reply.headers.get("location"), json.loads(body)))
    assert answers[:4] == answers[4:]
    assert answers[1] == b"".join(STREAM_CHUNKS)
    status, items, body = answers[2]
    assert (status, body) == (200, b"after the interim")
    assert dict(items)["X-Final"] == "yes"
    assert answers[3] == (200, None, {"method": "GET", "length": 0})
    reply = await session.request("POST", server.url("/continue"), data=b"x" * 100)
    assert reply.headers.multi_items() == items
    assert await reply.aread() == b"after the interim"
    assert session.idle_handles == 1


async def test_redirect_returned_or_followed(server: RawServer, session: Session) -> None:
    """Without follow_redirects the 302 comes back; with it, the target's answer."""
    reply, body = await session.fetch("GET", server.url("/redirect"))
    assert reply.status_code == 302
    assert reply.headers.get("location") == "/echo"
    assert body == b""
    assert [r.path for r in server.requests] == ["/redirect"]
    reply = await session.request("GET", server.url("/redirect"), follow_redirects=True)
    assert reply.status_code == 200  # as returned, before the body is read
    assert reply.headers.get("location") is None  # the final answer's headers only
    assert json.loads(await reply.aread()) == {"method": "GET", "length": 0}
    assert [r.path for r in server.requests] == ["/redirect", "/redirect", "/echo"]


async def test_large_body_sent_whole_and_again_on_a_307(
    server: RawServer, session: Session
) -> None:
    """A 1 MiB POST body arrives byte-exact, and a followed 307 sends it whole once more."""
    payload = bytes(range(256)) * 4096
    _, body = await session.fetch("POST", server.url("/echo"), data=payload)
    assert json.loads(body) == {"method": "POST", "length": len(payload)}
    reply, body = await session.fetch(
        "POST", server.url("/redirect307"), data=payload, follow_redirects=True
    )
    assert reply.status_code == 200
    assert json.loads(body) == {"method": "POST", "length": len(payload)}
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", "/echo"),
        ("POST", "/redirect307"),
        ("POST", "/echo"),
    ]
    assert all(r.body == payload for r in server.requests)
    assert all("expect" not in r.headers for r in server.requests)
    await session.fetch("GET", server.url("/echo"))
    assert server.requests[-1].body == b"" and "content-length" not in server.requests[-1].headers


async def test_stream_chunks_arrive_in_order_as_sent(server: RawServer, session: Session) -> None:
    """A chunked body streams piece by piece, in order, byte-exact; nothing stays active."""
    reply = await session.request("GET", server.url("/stream"), stream=True, timeout=5)
    assert reply.status_code == 200
    assert reply.headers.get("transfer-encoding") == "chunked"
    pieces: list[bytes] = []
    still_sending: list[bool] = []
    async for piece in reply.aiter_bytes():
        pieces.append(piece)
        still_sending.append(not server.streams)
        if len(pieces) == 2:
            await asyncio.sleep(8 * STREAM_PAUSE)  # let chunks queue up: they come joined
    assert b"".join(pieces) == b"".join(STREAM_CHUNKS)
    assert len(pieces) >= 4  # paced chunks are not one buffered blob
    assert still_sending[0]  # the first piece arrived before the server finished
    assert len(pieces[2]) > len(STREAM_CHUNKS[0])  # the queued chunks, joined in order
    # The server records the end after its last write: possibly after the client read it.
    assert await server.wait_stream_end() == StreamEnd(sent=len(STREAM_CHUNKS), client_left=False)
    assert len(server.streams) == 1
    assert reply.finished
    assert session.active == 0
    assert session.idle_handles == 1


async def test_bodies_decoded_in_every_encoding_a_browser_accepts(
    server: RawServer, session: Session
) -> None:
    """Accept-Encoding lists Chrome's encodings, and each one comes back decoded."""
    for encoding in ("gzip", "deflate", "br", "zstd"):
        reply, body = await session.fetch("GET", server.url(f"/encoded/{encoding}"))
        assert reply.headers.get("content-encoding") == encoding
        assert body == ENCODED_BODY, encoding
    assert {r.headers["accept-encoding"] for r in server.requests} == {ACCEPT_ENCODING}
    assert ACCEPT_ENCODING == "gzip, deflate, br, zstd"


async def test_compressed_stream_decoded_as_it_arrives(server: RawServer, session: Session) -> None:
    """A gzip event stream, flushed piece by piece, reaches the reader decoded and paced."""
    reply = await session.request("GET", server.url("/gzip-stream"), stream=True, timeout=5)
    pieces: list[bytes] = []
    still_sending: list[bool] = []
    async for piece in reply.aiter_bytes():
        pieces.append(piece)
        still_sending.append(not server.streams)
    assert b"".join(pieces) == b"".join(STREAM_CHUNKS)
    assert len(pieces) >= 4  # decoded as it came, not after the whole body
    assert still_sending[0]


async def test_only_the_caller_s_headers_are_sent(server: RawServer, session: Session) -> None:
    """No navigation headers of the impersonated browser are added to a request."""
    await session.fetch("POST", server.url("/echo"), headers={"X-Mine": "1"}, data=b"{}")
    (seen,) = server.requests
    added = set(seen.headers) - {"x-mine", "host", "content-length", "accept-encoding"}
    assert added <= {"accept", "content-type"}, added  # libcurl's own for a POST, at most
    assert seen.headers["x-mine"] == "1"


async def test_aclose_mid_stream_hangs_up_and_frees_the_handle(
    server: RawServer, session: Session
) -> None:
    """aclose() while streaming closes the connection early; the handle is reused after."""
    reply = await session.request("GET", server.url("/stream"), stream=True, timeout=5)
    received = b""
    async for piece in reply.aiter_bytes():
        received += piece
        if len(received) >= 2 * len(STREAM_CHUNKS[0]):
            break
    assert session.active == 1
    await reply.aclose()
    assert reply.finished
    assert session.active == 0
    assert session.idle_handles == 1
    assert [piece async for piece in reply.aiter_bytes()] == []  # ended quietly
    end = await server.wait_stream_end()
    assert end.client_left
    assert 2 <= end.sent < len(STREAM_CHUNKS)
    _, body = await session.fetch("POST", server.url("/echo"), data=b"again")
    assert json.loads(body) == {"method": "POST", "length": 5}
    assert session.idle_handles == 1


async def test_header_deadline_on_silent_stream(server: RawServer, session: Session) -> None:
    """No headers within a stream's timeout: TransferAborted code 28, mapped to UpstreamTimeout.

    The server stays silent for ten times the timeout and counts who hung up: each
    connection must end at the client's deadline, not at the server's stall.
    """
    start = time.monotonic()
    with pytest.raises(TransferAborted) as info:
        await session.request("GET", server.url("/silent"), stream=True, timeout=DEADLINE)
    elapsed = time.monotonic() - start
    assert info.value.code == CurlECode.OPERATION_TIMEDOUT
    assert DEADLINE * 0.8 <= elapsed < SILENT_STALL
    assert session.active == 0
    with pytest.raises(UpstreamTimeout) as mapped, map_transport_errors("x"):
        await session.request("POST", server.url("/silent"), stream=True, timeout=DEADLINE)
    assert isinstance(mapped.value.__cause__, TransferAborted)
    assert "(x)" in str(mapped.value)
    with pytest.raises(UpstreamTimeout):
        await open_stream(
            session, server.url("/silent"), data=b"{}", headers={}, idle_timeout=DEADLINE
        )
    assert [r.method for r in server.requests] == ["GET", "POST", "POST"]
    assert session.active == 0
    await _eventually(lambda: server.silent_closed == 3)  # each connection was hung up
    assert server.silent_outlasted == 0  # by the client, before the server's stall ran out


async def test_idle_deadline_on_a_stream_gone_silent(server: RawServer, session: Session) -> None:
    """A stream silent for its timeout after a first chunk fails with code 28 (not an abort),
    mapped to UpstreamTimeout, after what came; its connection is hung up. (curl's low-speed
    check measures over a window: about 7 s for 1 s, so no upper bound here.)"""
    reply = await session.request("GET", server.url("/stall"), stream=True, timeout=1)
    received: list[bytes] = []
    start = time.monotonic()
    with pytest.raises(UpstreamTimeout, match="did not answer in time") as info:
        async for chunk in iter_body(reply):
            received.append(chunk)
    elapsed = time.monotonic() - start
    assert received == [STREAM_CHUNKS[0]]
    cause = info.value.__cause__
    assert isinstance(cause, CurlError) and not isinstance(cause, TransferAborted)
    assert cause.code == CurlECode.OPERATION_TIMEDOUT
    assert elapsed >= 0.9
    assert session.active == 0
    await _eventually(lambda: server.silent_closed == 1)


async def test_total_timeout_on_silent_fetch(server: RawServer, session: Session) -> None:
    """A plain fetch that gets no answer fails with libcurl's timeout (28) at its deadline.

    The server would stay silent for ten times the timeout; it sees the client hang up first.
    """
    start = time.monotonic()
    with pytest.raises(CurlError) as info:
        await session.fetch("GET", server.url("/silent"), timeout=DEADLINE)
    elapsed = time.monotonic() - start
    assert info.value.code == CurlECode.OPERATION_TIMEDOUT
    assert DEADLINE * 0.8 <= elapsed < SILENT_STALL
    assert session.active == 0
    assert session.idle_handles == 1
    with pytest.raises(UpstreamTimeout), map_transport_errors("x"):
        await session.fetch("GET", server.url("/silent"), timeout=(DEADLINE, 0.3))
    await _eventually(lambda: server.silent_closed == 2)
    assert server.silent_outlasted == 0


async def test_connection_refused_maps_to_connect_error(session: Session) -> None:
    """A closed port fails with COULDNT_CONNECT, mapped to UpstreamConnectError."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(CurlError) as info:
        await session.fetch("GET", f"http://127.0.0.1:{port}/", timeout=5)
    assert info.value.code == CurlECode.COULDNT_CONNECT
    with pytest.raises(UpstreamConnectError) as mapped, map_transport_errors("x"):
        await session.fetch("GET", f"http://127.0.0.1:{port}/", timeout=5)
    assert isinstance(mapped.value.__cause__, CurlError)
    assert session.active == 0
    assert session.idle_handles == 1


@pytest.mark.parametrize("call", ["request", "fetch"])
async def test_cancelled_request_frees_the_transfer(
    server: RawServer, session: Session, call: str
) -> None:
    """Cancelling a task waiting for headers (request or fetch) raises CancelledError and
    ends the transfer."""
    task = asyncio.ensure_future(getattr(session, call)("GET", server.url("/silent"), timeout=30))
    await _eventually(lambda: len(server.requests) == 1)
    assert session.active == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert session.active == 0
    assert session.idle_handles == 1
    await _eventually(lambda: server.silent_closed == 1)  # the connection was closed
    reply, body = await session.fetch("GET", server.url("/echo"))
    assert reply.status_code == 200 and json.loads(body)["method"] == "GET"


async def test_truncated_stream_raises_after_its_chunks(
    server: RawServer, session: Session
) -> None:
    """A chunked body cut before its last chunk yields what came, then UpstreamUnavailable."""
    reply = await session.request("GET", server.url("/truncated"), stream=True, timeout=5)
    assert reply.status_code == 200
    received: list[bytes] = []
    with pytest.raises(UpstreamUnavailable) as info:
        async for chunk in iter_body(reply):
            received.append(chunk)
    assert b"".join(received) == b"".join(TRUNCATED_CHUNKS)
    assert isinstance(info.value.__cause__, CurlError)
    assert not isinstance(info.value.__cause__, TransferAborted)
    assert reply.finished
    assert session.active == 0


async def test_trim_closes_surplus_idle_handles(server: RawServer, session: Session) -> None:
    """trim(keep) closes idle handles beyond keep and says how many; the session still works."""
    answers = await asyncio.gather(*(session.fetch("GET", server.url("/echo")) for _ in range(3)))
    assert [reply.status_code for reply, _ in answers] == [200, 200, 200]
    assert session.idle_handles == 3
    assert session.trim(5) == 0
    assert session.trim(1) == 2
    assert session.idle_handles == 1
    assert session.trim(0) == 1
    assert session.idle_handles == 0
    assert session.trim(0) == 0
    _, body = await session.fetch("GET", server.url("/echo"))
    assert json.loads(body) == {"method": "GET", "length": 0}
    assert session.idle_handles == 1


async def test_many_transfers_at_once_then_close_leaves_nothing_on_the_loop(
    server: RawServer, session: Session
) -> None:
    """Forty requests at once all answer; closing the session mid-stream ends the stream
    and leaves no socket watched and no timer scheduled."""
    answers = await asyncio.gather(*(session.fetch("GET", server.url("/echo")) for _ in range(40)))
    assert [reply.status_code for reply, _ in answers] == [200] * 40
    assert {json.loads(body)["method"] for _, body in answers} == {"GET"}
    reply = await session.request("GET", server.url("/stream"), stream=True, timeout=5)
    chunks = reply.aiter_bytes()
    assert (await anext(chunks)).startswith(STREAM_CHUNKS[0])
    sockets, _ = session.watching
    assert sockets >= 1  # the stream's connection
    await session.aclose()
    assert session.watching == (0, False)
    assert reply.finished
    assert session.active == 0
    await server.wait_stream_end()


async def _connections_of(server: RawServer, session: Session, count: int) -> set[int]:
    """The server's connection numbers that ``count`` concurrent requests arrived on."""
    first = len(server.requests)
    await asyncio.gather(*(session.fetch("GET", server.url("/echo")) for _ in range(count)))
    return {seen.connection for seen in server.requests[first:]}


async def test_connections_stay_open_while_transfers_run(server: RawServer) -> None:
    """Mid-burst, a request reuses a finished one's connection, beyond max_idle_connections."""
    session = Session(impersonate="chrome", max_idle_connections=1)
    try:
        stream = await session.request("GET", server.url("/stream"), stream=True, timeout=5)
        first = await _connections_of(server, session, 4)
        assert len(first) == 4
        again = await _connections_of(server, session, 4)
        assert again == first  # all four kept, though only one would be once idle
        await stream.aclose()
    finally:
        await session.aclose()


async def test_connections_closed_once_idle_after_a_burst(server: RawServer) -> None:
    """Once idle, the connections a burst opened are closed; a small load keeps its own."""
    session = Session(impersonate="chrome", max_idle_connections=2)
    try:
        small = await _connections_of(server, session, 2)
        await asyncio.sleep(0.05)  # idle now; two at once is within max_idle_connections
        assert await _connections_of(server, session, 2) == small

        burst = await _connections_of(server, session, 5)
        assert small < burst
        await _eventually(lambda: server.ended_connections >= 5)
        after = await _connections_of(server, session, 1)
        assert not after & burst  # a new connection
    finally:
        await session.aclose()


async def test_pool_gives_memory_back_once_transfers_are_few(server: RawServer) -> None:
    """The pool closes surplus idle handles at once; the full collection waits for quiet."""
    pool = SessionPool(max_idle_handles=0)
    gc.disable()  # only the pool's own collections are counted
    try:
        session = pool.session(server.url(""), None)
        streams = [
            await session.request("GET", server.url("/stream"), stream=True, timeout=5)
            for _ in range(QUIET_TRANSFERS + 2)
        ]
        await session.fetch("GET", server.url("/echo"))
        full_collections = gc.get_stats()[2]["collections"]
        assert pool.trim_idle() == 1
        assert session.active == QUIET_TRANSFERS + 2
        assert gc.get_stats()[2]["collections"] == full_collections  # no pause mid-burst
        for reply in streams:
            await reply.aclose()
        assert pool.trim_idle() == QUIET_TRANSFERS + 2
        assert gc.get_stats()[2]["collections"] == full_collections + 1
        assert pool.trim_idle() == 0
        assert gc.get_stats()[2]["collections"] == full_collections + 1  # once per burst
    finally:
        gc.enable()
        await pool.aclose()


async def test_pool_reclaims_once_a_burst_s_connections_are_closed(server: RawServer) -> None:
    """Closing a burst's connections (after the last transfer) is followed by a reclaim."""
    pool = SessionPool(max_idle_connections=2, max_idle_handles=100)
    gc.disable()  # only the pool's own collections are counted
    try:
        session = pool.session(server.url(""), None)
        pool.trim_idle()  # the reclaim of the session's creation, if any
        await asyncio.gather(*(session.fetch("GET", server.url("/echo")) for _ in range(5)))
        await _eventually(lambda: session.sheds == 1)
        full_collections = gc.get_stats()[2]["collections"]
        assert pool.trim_idle() == 0  # no handle closed: the shed alone calls for it
        assert gc.get_stats()[2]["collections"] == full_collections + 1
        pool.trim_idle()
        assert gc.get_stats()[2]["collections"] == full_collections + 1  # once per shed
    finally:
        gc.enable()
        await pool.aclose()


_FREED_LATER = """
import asyncio
from pathlib import Path

from chat2api.upstream.http import SessionPool


def rss_anon() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon")


async def main() -> None:
    pool = SessionPool()
    try:
        pool.trim_idle()
        blocks = [bytes(1024) for _ in range(16 * 1024)]
        kept = blocks[15::16]
        before = rss_anon()
        del blocks  # freed, in holes between the kept ones
        assert rss_anon() > before - 4 * 2**20, "malloc kept the holes"
        pool.trim_idle()
        assert rss_anon() < before - 6 * 2**20, "their pages went back to the system"
        small = [bytes(1024) for _ in range(1024)]
        del small  # 1 MiB freed: below the threshold, nothing to do
        assert pool.trim_idle() == 0
        assert len(kept) == 1024
    finally:
        await pool.aclose()


asyncio.run(main())
"""


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's heap"
)
def test_pool_gives_back_memory_freed_later_while_quiet() -> None:
    """Memory freed after the burst's reclaim (clients' idle connections, say) goes back too.

    16 MiB of 1 KiB blocks, one in 16 kept, sit in the middle of the heap:
    freeing the others leaves 15 KiB holes that malloc keeps. Once quiet, the next
    trim_idle hands their pages back; with less than RECLAIM_BYTES freed it
    leaves the heap alone. Run in a fresh interpreter: the suite's own process
    has other servers' trimmers (threads sharing the one heap) and whatever
    earlier tests left in it.
    """
    done = subprocess.run(
        [sys.executable, "-c", _FREED_LATER], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
