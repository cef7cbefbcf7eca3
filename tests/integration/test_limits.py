"""Limits before work: the key before the body, the body's size, a client's own token."""

from __future__ import annotations

import socket

import httpx2 as httpx
import openai
import pytest

from chat2api.sim import SimServer, mint_access_token
from servers import ServiceFactory, ServiceServer, sdk

LIMIT = 64 * 1024
USER = [{"role": "user", "content": "say exactly: ok"}]


def _raw(service: ServiceServer, head: bytes, body: bytes = b"") -> bytes:
    """Send ``head`` (and ``body``) on a fresh connection; what the server answered first.

    A server that waits for more than was sent never answers: the socket timeout is only
    there so that such a failure ends the test instead of hanging it.
    """
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as conn:
        conn.sendall(head + body)
        conn.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def _status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def _head(service: ServiceServer, headers: dict[str, str]) -> bytes:
    lines = [f"POST {service.settings.prefix_path}/v1/chat/completions HTTP/1.1", "Host: x"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_large_body_is_refused_unread(make_service: ServiceFactory, sim: SimServer) -> None:
    """A Content-Length past MAX_REQUEST_BYTES is a 413 before a byte of the body arrives."""
    service = make_service(MAX_REQUEST_BYTES=str(LIMIT))
    head = _head(service, {"Content-Type": "application/json", "Content-Length": "50000000"})
    reply = _raw(service, head)  # none of the 50 MB is ever sent: a reply means it went unread
    assert _status(reply) == 413
    url = service.openai_base_url + "/chat/completions"
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * (2 * LIMIT)}]}
    response = httpx.post(url, json=body, timeout=30)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "request_too_large"
    assert str(LIMIT) in error["message"]
    assert sim.state.stats.conversations == 0


def test_a_chunked_body_is_cut_at_the_limit(make_service: ServiceFactory, sim: SimServer) -> None:
    """A chunked body (no Content-Length) is refused once it passes the limit while being read."""
    service = make_service(MAX_REQUEST_BYTES=str(LIMIT))

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "'
        for _ in range(2 * LIMIT // 4096):
            yield b"x" * 4096
        yield b'"}]}'

    url = service.openai_base_url + "/chat/completions"
    response = httpx.post(url, content=chunks(), timeout=30)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    small = httpx.post(url, json={"model": "gpt-4o", "messages": USER}, timeout=30)
    assert small.status_code == 200, small.text


def test_the_key_is_checked_before_the_body(make_service: ServiceFactory, sim: SimServer) -> None:
    """With AUTHORIZATION set, a wrong key is a 401 while its body has not even been sent."""
    service = make_service(AUTHORIZATION="code-1", MAX_REQUEST_BYTES=str(10 * 1024 * 1024))
    head = _head(
        service,
        {
            "Authorization": "Bearer not-a-code",
            "Content-Type": "application/json",
            "Content-Length": str(5 * 1024 * 1024),
        },
    )
    reply = _raw(service, head, b'{"model": "gpt-4o", ')  # 20 bytes of the promised 5 MB
    assert _status(reply) == 401


def test_a_refused_refresh_token_costs_one_exchange_and_no_work(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """A 45-character key is exchanged once; its refusal is remembered; nothing else happens."""
    service = make_service(AUTHORIZATION="code-1", OAUTH_BASE_URL=sim.base_url)
    bogus = "A" * 45  # the original's old RefreshToken shape
    client = sdk(service, bogus)
    for _ in range(3):
        with pytest.raises(openai.AuthenticationError) as caught:
            client.chat.completions.create(model="gpt-4o", messages=USER)  # type: ignore[arg-type]
        assert bogus not in str(caught.value)
    assert [r["path"] for r in sim.state.requests] == ["/oauth/token"]
    assert sim.state.stats.conversations == 0
    assert sim.state.stats.requirements == 0


def test_an_expired_access_token_never_reaches_the_upstream(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """An expired AccessToken key is a 401 ``token_expired`` without an upstream call."""
    service = make_service(AUTHORIZATION="code-1")
    response = httpx.post(
        service.openai_base_url + "/chat/completions",
        json={"model": "gpt-4o", "messages": USER},
        headers={"Authorization": "Bearer " + mint_access_token(expires_in=-10)},
        timeout=30,
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"
    assert list(sim.state.requests) == []


def test_client_tokens_can_be_switched_off(make_service: ServiceFactory, sim: SimServer) -> None:
    """ALLOW_CLIENT_TOKENS=false serves the pool codes and refuses clients' own tokens."""
    service = make_service(AUTHORIZATION="code-1", ALLOW_CLIENT_TOKENS="false")
    with pytest.raises(openai.AuthenticationError) as caught:
        sdk(service, mint_access_token()).chat.completions.create(
            model="gpt-4o",
            messages=USER,  # type: ignore[arg-type]
        )
    assert "ALLOW_CLIENT_TOKENS" in str(caught.value)
    answer = sdk(service, "code-1").chat.completions.create(model="gpt-4o", messages=USER)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "ok"


def _deep(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_oversized_tool_schemas_are_a_400_not_a_stall(
    make_service: ServiceFactory, sim: SimServer, api: str
) -> None:
    """20,000 properties or 150 levels in a tool schema: a 400 on size, before any schema check.

    Both schemas also carry a type no JSON schema has: the slow meta-schema check would
    refuse them with its own message, so the size message shows that check never ran.
    """
    service = make_service()
    wide = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(20_000)}}
    for schema, size_message in ((wide, "more than 5000"), (_deep(150), "deeper than 32")):
        schema = {**schema, "type": "no-such-type"}
        if api == "chat":
            path = "/chat/completions"
            tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
            body = {"model": "gpt-4o", "messages": USER, "tools": [tool]}
            param = "tools[0].function.parameters"
        else:
            path = "/responses"
            tool = {"type": "function", "name": "f", "parameters": schema}
            body = {"model": "gpt-4o", "input": "hi", "tools": [tool]}
            param = None
        response = httpx.post(service.openai_base_url + path, json=body, timeout=30)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        if param is not None:
            assert error["param"] == param
        assert "tools" in (error["param"] or "")
        assert size_message in error["message"], error["message"]
    assert sim.state.stats.conversations == 0
