"""The lean load client: raw asyncio HTTP/1.1, no impersonation, one ``orjson.loads`` per event.

The curl_cffi client of ``_common`` impersonates Chrome and goes through
libcurl's multi handle; both cost CPU on the client's side that a real
direct user of the upstream need not pay, so a ratio against it flatters
chat2api. This module is as little as a client can be:

* ``HTTP``: keep-alive HTTP/1.1 connections over ``asyncio.open_connection``,
  ``Content-Length`` and chunked bodies, nothing else (no TLS, no redirects);
* ``LeanDirect``: the upstream calls chat2api makes per answer (see
  ``chat2api.upstream.chatgpt``), in era E2 (chat-requirements, proof of
  work, ``conversation``) or E3 (sentinel prepare, FNV proof, finalize,
  ``f/conversation/prepare``, ``f/conversation``), reading the answer in the
  delta-v1 or legacy encoding; the home page once per client;
* ``LeanOpenAI``: the same load sent to chat2api as chat completions.

Events are cut on blank lines and each event's data is parsed once; the
answer text is what a client must keep (v1: the appended pieces; legacy:
the last full snapshot).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import orjson
from curl_cffi.requests import AsyncSession, Response

from _common import MODEL, REQUEST_TIMEOUT, TEXT_PART, BenchError, StreamResult
from chat2api.sentinel import (
    BrowserProfile,
    build_config,
    parse_home_page,
    requirements_token,
    solve,
)
from chat2api.upstream.e3 import conversation_body, prepare_body

_HEAD_END = b"\r\n\r\n"


class _Conn:
    """One keep-alive connection."""

    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer


class Reply:
    """Status, lower-cased headers and the body, read whole or chunk by chunk."""

    def __init__(self, http: HTTP, conn: _Conn, status: int, headers: dict[bytes, bytes]) -> None:
        self._http = http
        self._conn: _Conn | None = conn
        self.status = status
        self.headers = headers

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; the connection goes back to the pool at its end."""
        conn = self._conn
        if conn is None:
            return
        reader = conn.reader
        if self.headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            while True:
                size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";", 1)[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # no trailers are sent
                    break
                data = await reader.readexactly(size + 2)
                yield data[:-2]
        else:
            length = int(self.headers.get(b"content-length", b"0"))
            if length:
                yield await reader.readexactly(length)
        self._conn = None
        self._http.give_back(conn, self.headers.get(b"connection", b"").lower() != b"close")

    async def read(self) -> bytes:
        """The whole body."""
        try:
            return b"".join([chunk async for chunk in self.chunks()])
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the connection of a body not read to its end."""
        if self._conn is not None:
            self._conn.writer.close()
            self._conn = None


class HTTP:
    """Keep-alive HTTP/1.1 to one ``http://host:port``; a connection per request in flight."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self._host_line = f"Host: {self.host}:{self.port}\r\n".encode()
        self._idle: list[_Conn] = []

    def give_back(self, conn: _Conn, reusable: bool) -> None:
        if reusable:
            self._idle.append(conn)
        else:
            conn.writer.close()

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None = None
    ) -> Reply:
        """Send one request; the reply's head."""
        head = f"{method} {path} HTTP/1.1\r\n".encode() + self._host_line + _header_lines(headers)
        if body is not None:
            head += b"Content-Length: %d\r\n" % len(body)
        data = head + b"\r\n" + (body or b"")
        while True:
            fresh = not self._idle
            conn = (
                _Conn(*await asyncio.open_connection(self.host, self.port, limit=1 << 20))
                if fresh
                else self._idle.pop()
            )
            conn.writer.write(data)
            try:
                raw = await conn.reader.readuntil(_HEAD_END)
            except (asyncio.IncompleteReadError, ConnectionError):
                conn.writer.close()
                if fresh:
                    raise
                continue  # the server closed an idle connection: another one
            lines = raw[:-4].split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            fields: dict[bytes, bytes] = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                fields[name.strip().lower()] = value.strip()
            return Reply(self, conn, status, fields)

    async def close(self) -> None:
        for conn in self._idle:
            conn.writer.close()
        self._idle.clear()


class CurlReply(Reply):
    """A curl_cffi streamed response behind ``Reply``'s interface."""

    def __init__(self, response: Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers = {}

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.aiter_content():
            yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()


class CurlHTTP:
    """``HTTP``'s interface over one curl_cffi ``AsyncSession`` (Chrome impersonation)."""

    def __init__(self, session: AsyncSession[Response], base_url: str) -> None:
        self._session = session
        self._base = base_url

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None = None
    ) -> Reply:
        response = await self._session.request(
            method,  # type: ignore[arg-type]
            self._base + path,
            headers=headers,
            data=body,
            timeout=REQUEST_TIMEOUT,
            stream=True,
        )
        return CurlReply(response)

    async def close(self) -> None:
        return None


def _header_lines(headers: dict[str, str]) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()


async def _events(reply: Reply) -> AsyncIterator[tuple[bytes, bytes]]:
    """``(event name, data)`` of each SSE event, cut on blank lines."""
    buffer = b""
    async for chunk in reply.chunks():
        buffer += chunk
        if b"\n\n" not in buffer:
            continue
        *blocks, buffer = buffer.split(b"\n\n")
        for block in blocks:
            name = b""
            data = b""
            for line in block.split(b"\n"):
                if line.startswith(b"data: "):
                    data = line[6:]
                elif line.startswith(b"event: "):
                    name = line[7:]
            if data:
                yield name, data


async def fetch_profile(http: HTTP | CurlHTTP) -> BrowserProfile:
    """``GET /`` once: a browser profile with the build id and scripts of the home page."""
    reply = await http.request("GET", "/", {})
    assets = parse_home_page((await reply.read()).decode())
    if assets.build_id is None:
        raise BenchError("the simulator's home page has no build id")
    return replace(BrowserProfile.random(assets=assets), build_id=assets.build_id)


class LeanDirect:
    """chat2api's upstream calls, made by the lean client (module docstring)."""

    def __init__(
        self, http: HTTP | CurlHTTP, token: str, profile: BrowserProfile, *, era: str, encoding: str
    ) -> None:
        self._http = http
        self._profile = profile
        self._era = era
        self._encoding = encoding
        self._base = {
            "Authorization": f"Bearer {token}",
            "OAI-Device-Id": str(uuid.uuid5(uuid.NAMESPACE_URL, "bench:" + token)),
            "Content-Type": "application/json",
        }
        if era == "e3":
            self._base["OAI-Client-Version"] = profile.build_id or ""
            self._base["OAI-Session-Id"] = str(uuid.uuid4())

    async def _json(self, path: str, body: Any, extra: dict[str, str] | None = None) -> Any:
        headers = self._base if extra is None else self._base | extra
        reply = await self._http.request("POST", path, headers, orjson.dumps(body))
        content = await reply.read()
        if reply.status not in (200, 201):
            raise BenchError(f"{path} answered HTTP {reply.status}: {content[:120]!r}")
        return orjson.loads(content)

    def _body(self, text: str) -> dict[str, Any]:
        message = {
            "id": str(uuid.uuid4()),
            "author": {"role": "user"},
            "content": {"content_type": "text", "parts": [text]},
        }
        return {
            "action": "next",
            "messages": [message],
            "model": MODEL,
            "parent_message_id": str(uuid.uuid4()),
            "supported_encodings": ["v1"] if self._encoding == "v1" else [],
            "history_and_training_disabled": True,
        }

    async def _e2(self, body: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
        config = build_config(self._profile)
        data = await self._json(
            "/backend-api/sentinel/chat-requirements", {"p": requirements_token(config)}
        )
        headers = {"OpenAI-Sentinel-Chat-Requirements-Token": data["token"]}
        pow_ = data.get("proofofwork") or {}
        if pow_.get("required"):
            headers["OpenAI-Sentinel-Proof-Token"] = solve(
                pow_["seed"], pow_["difficulty"], config, time_budget=10
            )
        return "/backend-api/conversation", headers, body

    async def _e3(self, body: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
        config = build_config(self._profile, era="e3")
        prefix = "/backend-api/sentinel/chat-requirements"
        data = await self._json(prefix + "/prepare", {"p": requirements_token(config, suffix="~S")})
        finalize = {"prepare_token": data["prepare_token"]}
        pow_ = data.get("proofofwork") or {}
        if pow_.get("required"):
            finalize["proofofwork"] = solve(
                pow_["seed"], pow_["difficulty"], config, hash="fnv", time_budget=10
            )
        data = await self._json(prefix + "/finalize", finalize)
        headers = {"OpenAI-Sentinel-Chat-Requirements-Token": data["token"]}
        if "proofofwork" in finalize:
            headers["OpenAI-Sentinel-Proof-Token"] = finalize["proofofwork"]
        if data.get("so_token"):
            headers["OpenAI-Sentinel-SO-Token"] = data["so_token"]
        conduit = await self._json(
            "/backend-api/f/conversation/prepare",
            prepare_body(body),
            {"X-Conduit-Token": "no-token"} | headers,
        )
        headers["X-Conduit-Token"] = conduit.get("conduit_token") or "no-token"
        return "/backend-api/f/conversation", headers, conversation_body(body)

    async def stream(self, text: str) -> StreamResult:
        """One answer; TTFB counts from the first sentinel call to the first answer text."""
        started = time.perf_counter()
        body = self._body(text)
        path, sentinel, payload = await (self._e3 if self._era == "e3" else self._e2)(body)
        headers = self._base | sentinel | {"Accept": "text/event-stream"}
        reply = await self._http.request("POST", path, headers, orjson.dumps(payload))
        if reply.status != 200:
            content = await reply.read()
            raise BenchError(f"{path} answered HTTP {reply.status}: {content[:120]!r}")
        ttfb = 0.0
        done = False
        parts: list[str] = []
        snapshot = ""
        legacy = self._encoding != "v1"
        path_ = op = ""
        try:
            async for name, data in _events(reply):
                if data == b"[DONE]":
                    done = True
                    continue
                if legacy:
                    event = orjson.loads(data)
                    message = event.get("message") if isinstance(event, dict) else None
                    if not message or message.get("author", {}).get("role") != "assistant":
                        continue
                    got = (message.get("content") or {}).get("parts") or [""]
                    if isinstance(got[0], str) and got[0]:
                        if not snapshot:
                            ttfb = time.perf_counter() - started
                        snapshot = got[0]
                    continue
                if name != b"delta":
                    continue
                delta = orjson.loads(data)
                path_, op = delta.get("p", path_), delta.get("o", op)
                if op == "patch":
                    pieces = [
                        d.get("v")
                        for d in delta["v"]
                        if d.get("p") == TEXT_PART and d.get("o") == "append"
                    ]
                elif path_ == TEXT_PART and op == "append":
                    pieces = [delta.get("v")]
                else:
                    continue
                if pieces and not parts:
                    ttfb = time.perf_counter() - started
                parts.extend(p for p in pieces if isinstance(p, str))
        finally:
            await reply.aclose()
        text_out = snapshot if legacy else "".join(parts)
        return StreamResult(ttfb, time.perf_counter() - started, text_out, done)

    async def complete(self, text: str) -> tuple[float, str]:
        """Seconds for the upstream calls and the answer read to its end, and its text."""
        result = await self.stream(text)
        if not result.done:
            raise BenchError("the upstream stream did not end with [DONE]")
        return result.total, result.text


class LeanOpenAI:
    """The same load sent to chat2api's ``/v1/chat/completions`` by the lean client."""

    def __init__(self, http: HTTP | CurlHTTP, token: str) -> None:
        self._http = http
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def _body(self, text: str, stream: bool) -> bytes:
        return orjson.dumps(
            {"model": MODEL, "messages": [{"role": "user", "content": text}], "stream": stream}
        )

    async def complete(self, text: str) -> tuple[float, str]:
        """Seconds for one non-stream completion, and its answer text."""
        started = time.perf_counter()
        reply = await self._http.request(
            "POST", "/v1/chat/completions", self._headers, self._body(text, False)
        )
        content = await reply.read()
        elapsed = time.perf_counter() - started
        if reply.status != 200:
            raise BenchError(f"chat2api answered HTTP {reply.status}: {content[:200]!r}")
        answer = orjson.loads(content)["choices"][0]["message"]["content"]
        return elapsed, answer if isinstance(answer, str) else ""

    async def stream(self, text: str) -> StreamResult:
        """One stream; TTFB counts from sending the request to the first content chunk."""
        started = time.perf_counter()
        reply = await self._http.request(
            "POST", "/v1/chat/completions", self._headers, self._body(text, True)
        )
        if reply.status != 200:
            content = await reply.read()
            raise BenchError(f"chat2api answered HTTP {reply.status}: {content[:200]!r}")
        parts: list[str] = []
        ttfb = 0.0
        done = False
        try:
            async for _, data in _events(reply):
                if data == b"[DONE]":
                    done = True
                    continue
                event = orjson.loads(data)
                choices = event.get("choices")
                if choices is None:
                    raise BenchError(f"chat2api sent an error event: {data[:200]!r}")
                if not choices:
                    continue
                content = choices[0]["delta"].get("content")
                if isinstance(content, str) and content:
                    if not parts:
                        ttfb = time.perf_counter() - started
                    parts.append(content)
        finally:
            await reply.aclose()
        return StreamResult(ttfb, time.perf_counter() - started, "".join(parts), done)
