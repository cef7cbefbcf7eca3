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
    # Sent with every request (before the call's own headers).
    headers: dict[str, str] = field(default_factory=dict)

    def request(
        self, method: str, path: str, body: object = None, headers: dict[str, str] | None = None
    ) -> Reply:
        """Send one request on a fresh connection and read the whole answer."""
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=10)
        data = None if body is None else json.dumps(body).encode()
        hdrs = {"User-Agent": UA, "Content-Type": "application/json", **self.headers}
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

    def identity(self, token: str | None = None, prefix: str = "/backend-api") -> dict[str, str]:
        """Who is calling: the bearer header, or the anonymous device id."""
        return self.auth(token) if prefix == "/backend-api" else {"OAI-Device-Id": DEVICE}

    def e3_sentinel(self, token: str | None = None, prefix: str = "/backend-api") -> dict[str, str]:
        """E3 prepare + FNV proof + finalize; the sentinel headers for `f/conversation`."""
        hdrs = self.identity(token, prefix)
        prep = self.request(
            "POST", f"{prefix}/sentinel/chat-requirements/prepare", {"p": P_TOKEN}, hdrs
        )
        assert prep.status == 200, prep.body
        challenge = prep.json()
        body: dict[str, Any] = {"prepare_token": challenge["prepare_token"]}
        pow_ = challenge["proofofwork"]
        if pow_["required"]:
            body["proofofwork"] = solve_fnv(pow_["seed"], pow_["difficulty"])
        fin = self.request("POST", f"{prefix}/sentinel/chat-requirements/finalize", body, hdrs)
        assert fin.status == 200, fin.body
        out = dict(hdrs)
        out["OpenAI-Sentinel-Chat-Requirements-Token"] = fin.json()["token"]
        if "proofofwork" in body:
            out["OpenAI-Sentinel-Proof-Token"] = body["proofofwork"]
        return out

    def conduit(
        self, token: str | None = None, prefix: str = "/backend-api", previous: str = "no-token"
    ) -> str:
        """`f/conversation/prepare`: a fresh conduit token."""
        hdrs = dict(self.identity(token, prefix), **{"X-Conduit-Token": previous})
        reply = self.request("POST", f"{prefix}/f/conversation/prepare", E3_PREPARE_BODY, hdrs)
        assert reply.status == 200, reply.body
        conduit: str = reply.json()["conduit_token"]
        return conduit

    def e3_headers(self, token: str | None = None, prefix: str = "/backend-api") -> dict[str, str]:
        """Everything an E3 send needs: sentinel headers, conduit token, Accept."""
        hdrs = self.e3_sentinel(token, prefix)
        hdrs["X-Conduit-Token"] = self.conduit(token, prefix)
        hdrs["Accept"] = "text/event-stream"
        return hdrs

    def e3_converse(
        self,
        text: str,
        *,
        token: str | None = None,
        prefix: str = "/backend-api",
        extra: dict[str, Any] | None = None,
    ) -> Reply:
        """Full E3 send: prepare, finalize, conduit, then `f/conversation` (v1)."""
        hdrs = self.e3_headers(token, prefix)
        return self.request("POST", f"{prefix}/f/conversation", e3_body(text, extra), hdrs)


DELTA_ENCODING = b'event: delta_encoding\ndata: "v1"\n\n'
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


CONFIG25 = [
    *CONFIG[:2], 4294967296, *CONFIG[3:5], "https://chatgpt.com/backend-api/sentinel/sdk.js",
    *CONFIG[6:], 0, 0, 0, 0, 0, 0, 0,
]  # fmt: skip


def fnv(text: str) -> str:
    """The E3 hash (spec 3.3), over UTF-16 code units as JS `charCodeAt` sees them."""
    h = 0x811C9DC5
    for ch in text:
        point = ord(ch)
        units = [point] if point < 0x10000 else [0xD800 + ((point - 0x10000) >> 10)]
        if point >= 0x10000:
            units.append(0xDC00 + ((point - 0x10000) & 0x3FF))
        for unit in units:
            h = ((h ^ unit) * 0x01000193) % 2**32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) % 2**32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) % 2**32
    h ^= h >> 16
    return format(h, "08x")


def solve_fnv(seed: str, difficulty: str, config: list[Any] | None = None) -> str:
    """A test-side E3 solver: FNV, a 25-element config (default CONFIG25), `~S` suffix."""
    config = list(config or CONFIG25)
    for nonce in range(500_000):
        config[3] = nonce
        enc = base64.b64encode(
            json.dumps(config, separators=(",", ":"), ensure_ascii=False).encode()
        ).decode()
        if fnv(seed + enc)[: len(difficulty)] <= difficulty:
            return "gAAAAAB" + enc + "~S"
    raise AssertionError("unsolvable")


E3_PREPARE_BODY: dict[str, Any] = {
    "action": "next",
    "fork_from_shared_post": False,
    "parent_message_id": "client-created-root",
    "model": "auto",
    "client_prepare_state": "none",
    "timezone_offset_min": 480,
    "timezone": "America/Los_Angeles",
    "conversation_mode": {"kind": "primary_assistant"},
    "system_hints": [],
    "supports_buffering": True,
    "supported_encodings": ["v1"],
}


def e3_body(text: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """An E3 conversation body (spec 4.2) with one user message."""
    body: dict[str, Any] = {
        "action": "next",
        "messages": [
            {
                "id": "8b9d5c3e-77a1-4f0e-b2d4-6e5f1a3c2b99",
                "author": {"role": "user"},
                "create_time": 1767636000.123,
                "content": {"content_type": "text", "parts": [text]},
                "metadata": {"selected_sources": [], "serialization_metadata": {}},
            }
        ],
        "parent_message_id": "client-created-root",
        "model": "auto",
        "client_prepare_state": "success",
        "timezone_offset_min": 480,
        "timezone": "America/Los_Angeles",
        "conversation_mode": {"kind": "primary_assistant"},
        "enable_message_followups": True,
        "system_hints": [],
        "supports_buffering": True,
        "supported_encodings": ["v1"],
        "paragen_cot_summary_display_override": "allow",
        "force_parallel_switch": "auto",
        "thinking_effort": "standard",
    }
    body.update(extra or {})
    return body


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


def apply_v1(records: list[tuple[str | None, str]]) -> dict[int, dict[str, Any]]:
    """A minimal reference decoder: carry-forward p/o/c, add/append/replace/patch."""
    roots: dict[int, dict[str, Any]] = {}
    p = o = None
    c = 0

    def apply(root: dict[str, Any], path: str, op: str, value: Any) -> None:
        keys = path.split("/")[1:]
        parent: Any = root
        for k in keys[:-1]:
            parent = parent[int(k)] if isinstance(parent, list) else parent[k]
        last: Any = int(keys[-1]) if isinstance(parent, list) else keys[-1]
        if op == "append":
            if isinstance(parent[last], dict):
                parent[last].update(value)
            else:
                parent[last] += value
        else:
            parent[last] = value

    for event, data in records:
        if event != "delta":
            continue
        rec = json.loads(data)
        p, o, c = rec.get("p", p), rec.get("o", o), rec.get("c", c)
        if o == "add" and p == "":
            roots[c] = rec["v"]
        elif o == "patch":
            for sub in rec["v"]:
                apply(roots[c], sub["p"], sub["o"], sub["v"])
        else:
            assert p is not None and o is not None
            apply(roots[c], p, o, rec["v"])
    return roots


def v1_answer(raw: bytes) -> str:
    """The text of the last assistant message of a v1 stream (reference decoder)."""
    roots = apply_v1(sse_records(raw))
    answers = [
        r["message"]
        for _, r in sorted(roots.items())
        if r.get("message") and r["message"]["author"]["role"] == "assistant"
    ]
    text: str = answers[-1]["content"]["parts"][0]
    return text


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
