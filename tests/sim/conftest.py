"""Fixtures: one simulator per test module, reset before each test, plus tiny HTTP helpers."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from chat2api.sim import SimConfig, SimServer, mint_access_token

UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36"
)


@dataclass
class Reply:
    """One HTTP exchange, body fully read."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class Client:
    """Blocking HTTP/1.1 helper bound to one simulator."""

    server: SimServer
    token: str = field(default_factory=mint_access_token)

    def request(
        self, method: str, path: str, body: object = None, headers: dict[str, str] | None = None
    ) -> Reply:
        """Send one request on a fresh connection and read the whole answer."""
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=10)
        data = None if body is None else json.dumps(body).encode()
        hdrs = {"User-Agent": UA, "Content-Type": "application/json"}
        hdrs.update(headers or {})
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        out = Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        conn.close()
        return out

    def auth(self, token: str | None = None) -> dict[str, str]:
        """Bearer header for `token` (default: the client's valid token)."""
        return {"Authorization": f"Bearer {token or self.token}"}

    def sentinel(self, token: str | None = None, prefix: str = "/backend-api") -> dict[str, str]:
        """Run chat-requirements and solve its PoW; return the headers for a conversation."""
        hdrs = self.auth(token) if prefix == "/backend-api" else {"OAI-Device-Id": DEVICE}
        req = self.request("POST", f"{prefix}/sentinel/chat-requirements", {"p": P_TOKEN}, hdrs)
        assert req.status == 200, req.body
        data = req.json()
        out = dict(hdrs)
        out["OpenAI-Sentinel-Chat-Requirements-Token"] = data["token"]
        pow_ = data["proofofwork"]
        if pow_["required"]:
            out["OpenAI-Sentinel-Proof-Token"] = solve(pow_["seed"], pow_["difficulty"])
        return out

    def converse(
        self,
        text: str,
        *,
        v1: bool = False,
        model: str = "gpt-4o",
        token: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        prefix: str = "/backend-api",
    ) -> Reply:
        """Full send: requirements + PoW + conversation POST; returns the raw SSE reply."""
        hdrs = self.sentinel(token, prefix)
        hdrs["Accept"] = "text/event-stream"
        hdrs.update(headers or {})
        return self.request(
            "POST", f"{prefix}/conversation", conversation_body(text, v1, model, extra), hdrs
        )


DEVICE = "2d1f7a3c-5b9e-4c0d-8e7f-6a5b4c3d2e1f"
CONFIG = [
    3000, "Mon Jan 05 2026 10:00:00 GMT-0800 (Pacific Standard Time)", 4294705152, 1, UA,
    "https://cdn.oaistatic.com/assets/root.js", "prod-0123", "en-US", "en-US,en", 0,
    "webdriver−false", "location", "onfocus", 1234.5, "11111111-2222-4333-8444-555555555555",
    "", 8, 1767636000123.4,
]  # fmt: skip
P_TOKEN = (
    "gAAAAAC"
    + base64.b64encode(
        json.dumps(CONFIG, separators=(",", ":"), ensure_ascii=False).encode()
    ).decode()
)


def solve(seed: str, difficulty: str) -> str:
    """A test-side SHA3 solver (independent of both the sim and the client)."""
    config = list(CONFIG)
    for nonce in range(500_000):
        config[3] = nonce
        enc = base64.b64encode(
            json.dumps(config, separators=(",", ":"), ensure_ascii=False).encode()
        ).decode()
        if hashlib.sha3_512((seed + enc).encode()).hexdigest()[: len(difficulty)] <= difficulty:
            return "gAAAAAB" + enc
    raise AssertionError("unsolvable")


def conversation_body(
    text: str, v1: bool = False, model: str = "gpt-4o", extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An E2 conversation body (spec 4.1) with one user message."""
    body: dict[str, Any] = {
        "action": "next",
        "messages": [
            {
                "id": "8b9d5c3e-77a1-4f0e-b2d4-6e5f1a3c2b99",
                "author": {"role": "user"},
                "content": {"content_type": "text", "parts": [text]},
                "metadata": {},
            }
        ],
        "conversation_mode": {"kind": "primary_assistant"},
        "model": model,
        "parent_message_id": "c6a1f0d2-9e3b-4a7c-8d15-2b4e6f8a0c31",
        "timezone_offset_min": -480,
        "history_and_training_disabled": True,
        "force_use_sse": True,
    }
    if v1:
        body["supported_encodings"] = ["v1"]
    body.update(extra or {})
    return body


def sse_records(raw: bytes) -> list[tuple[str | None, str]]:
    """Split an SSE body into (event, data) pairs (LF framing, as the sim writes it)."""
    out: list[tuple[str | None, str]] = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        event = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        out.append((event, "\n".join(data)))
    return out


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    """A simulator for the module, on an ephemeral 127.0.0.1 port."""
    with SimServer(SimConfig(pow_difficulty="0fffff")) as server:
        yield server


@pytest.fixture
def client(sim: SimServer) -> Client:
    """A client for a freshly reset simulator with default knobs."""
    sim.state.reset()
    sim.state.config = SimConfig(pow_difficulty="0fffff")
    return Client(sim)
