"""The served simulator: h2c-upgrade requests keep their body, disconnects are counted."""

from __future__ import annotations

import json
import socket
import time

import pytest
from curl_cffi.requests import AsyncSession

from chat2api.listen import ACCEPTORS

from .conftest import Client, conversation_body, sse_records


def _raw_post(client: Client, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """POST with curl_cffi-Chrome's h2c upgrade headers on a raw socket; return the reply."""
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{client.server.port}",
        "Connection: Upgrade, HTTP2-Settings",
        "Upgrade: h2c",
        "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    with socket.create_connection((client.server.host, client.server.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
            if b"data: [DONE]" in b"".join(chunks[-2:]):
                break
        return b"".join(chunks)


def test_h2c_upgrade_headers_keep_the_body_raw_socket(client: Client) -> None:
    """A POST with Upgrade: h2c is answered over HTTP/1.1 and the JSON body is recorded."""
    headers = client.sentinel()
    body = conversation_body("say exactly: upgraded")
    raw = _raw_post(client, "/backend-api/conversation", json.dumps(body).encode(), headers)
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert b'"parts":["upgraded"]},"status":"finished_successfully"' in raw
    recorded = client.server.state.requests[-1]
    assert recorded["headers"]["upgrade"] == "h2c" and recorded["body"] == body


@pytest.mark.anyio
async def test_h2c_upgrade_curl_cffi_chrome(client: Client) -> None:
    """curl_cffi impersonating Chrome (default settings) gets its bodies through intact."""
    base = client.server.base_url
    async with AsyncSession(impersonate="chrome") as session:
        req = await session.post(
            f"{base}/backend-api/sentinel/chat-requirements",
            json={"p": None},
            headers=client.auth(),
        )
        assert req.status_code == 200
        client.server.state.config = client.server.state.config.patched({"require_sentinel": False})
        body = conversation_body("say exactly: through curl", v1=True)
        reply = await session.post(
            f"{base}/backend-api/conversation", json=body, headers=client.auth()
        )
        assert reply.status_code == 200
        assert '"v":"through"' in reply.text and reply.text.endswith("data: [DONE]\n\n")
    sent = [r for r in client.server.state.requests if r["path"].endswith("/conversation")]
    assert sent[-1]["body"] == body
    assert client.server.state.requests[0]["body"] == {"p": None}
    assert sent[-1]["headers"].get("upgrade") == "h2c"  # the pitfall really was exercised


def test_client_disconnect_counts_cancelled(client: Client) -> None:
    """A client that hangs up mid-stream is counted in streams_cancelled, not completed."""
    headers = client.sentinel()
    body = json.dumps(conversation_body("x #sim:words=40 #sim:delay_ms=50")).encode()
    head = (
        f"POST /backend-api/conversation HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + "\r\n"
    )
    with socket.create_connection((client.server.host, client.server.port), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        got = b""
        while b'"in_progress"' not in got:
            got += sock.recv(65536)
    deadline = time.monotonic() + 5
    while client.server.state.stats.streams_cancelled == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    stats = client.request("GET", "/_sim/stats").json()
    assert (stats["streams_started"], stats["streams_cancelled"], stats["streams_completed"]) == (
        1,
        1,
        0,
    )


@pytest.mark.anyio
async def test_concurrent_streams(client: Client) -> None:
    """200 concurrent curl_cffi streams of 50 chunks all complete with the exact text."""
    import asyncio

    client.server.state.config = client.server.state.config.patched(
        {"require_sentinel": False, "reply_words": 50}
    )
    url = f"{client.server.base_url}/backend-api/conversation"
    async with AsyncSession(impersonate="chrome", max_clients=200) as session:

        async def one(i: int) -> str:
            r = await session.post(
                url, json=conversation_body(f"prompt {i}", v1=True), headers=client.auth()
            )
            recs = sse_records(r.content)
            return "".join(
                json.loads(d).get("v") if isinstance(json.loads(d).get("v"), str) else ""
                for e, d in recs
                if e == "delta"
            )

        texts = await asyncio.gather(*(one(i) for i in range(200)))
    from chat2api.sim import reply_text

    # The last word rides in the final patch, so the bare appends hold all but the last word.
    assert all(reply_text(f"prompt {i}", 50).startswith(t) for i, t in enumerate(texts))
    assert all(len(t.split(" ")) == 49 for t in texts)
    assert client.server.state.stats.streams_completed == 200


def test_burst_of_connections_shares_one_port(client: Client) -> None:
    """ACCEPTORS listeners take connections from one queue; a burst is answered on every one."""
    running = client.server._server.servers  # uvicorn's, one per listener
    assert len(running) == ACCEPTORS > 1
    assert {s.sockets[0].getsockname()[1] for s in running} == {client.server.port}

    request = f"GET /backend-api/models HTTP/1.1\r\nHost: 127.0.0.1:{client.server.port}\r\n\r\n"
    socks = [
        socket.create_connection((client.server.host, client.server.port), timeout=10)
        for _ in range(4 * ACCEPTORS)
    ]
    try:
        for sock in socks:
            sock.sendall(request.encode())
        for sock in socks:
            assert sock.recv(64).startswith(b"HTTP/1.1 ")
    finally:
        for sock in socks:
            sock.close()
