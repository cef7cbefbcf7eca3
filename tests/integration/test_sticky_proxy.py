"""Each pool account keeps one proxy and one proxy session (`{}` in PROXY_URL) for its life."""

from __future__ import annotations

import base64
import json
import socketserver
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx2 as httpx
import pytest

from chat2api.sim import SimServer, mint_access_token, mint_refresh_token
from chat2api.store.base import account_key
from chat2api.upstream.http import sticky_choice, sticky_proxy
from servers import ServiceFactory, add_tokens, sdk

CODE = "sticky-code"
USER = [{"role": "user", "content": "say exactly: ok"}]


class _Forward(BaseHTTPRequestHandler):
    """A plain-HTTP forward proxy: records (its port, proxy user, bearer, path) per request."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[int, str, str, str]]] = []

    def _relay(self) -> None:
        credentials = self.headers.get("Proxy-Authorization", "").removeprefix("Basic ")
        user = base64.b64decode(credentials).decode().split(":")[0] if credentials else ""
        bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
        _Forward.seen.append((self.server.server_address[1], user, bearer, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else None
        skip = {"proxy-authorization", "proxy-connection", "connection", "host", "content-length"}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        request = urllib.request.Request(self.path, data=data, headers=headers, method=self.command)
        try:
            with urllib.request.urlopen(request, timeout=30) as upstream:
                status, body, kind = upstream.status, upstream.read(), upstream.headers
        except urllib.error.HTTPError as exc:
            status, body, kind = exc.code, exc.read(), exc.headers
        self.send_response(status)
        self.send_header("Content-Type", kind.get("Content-Type", "application/octet-stream"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_HEAD = _relay

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def proxies() -> Iterator[list[int]]:
    """Two forward proxies on loopback; their ports."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Forward) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    _Forward.seen.clear()
    yield [s.server_address[1] for s in servers]
    for server in servers:
        server.shutdown()
        server.server_close()


def test_each_account_keeps_its_proxy_and_session(
    make_service: ServiceFactory, sim: SimServer, proxies: list[int]
) -> None:
    """Across rotations, every request of an account goes through the same proxy and session."""
    urls = [f"http://acct-{{}}:pw@127.0.0.1:{port}" for port in proxies]
    service = make_service(AUTHORIZATION=CODE, PROXY_URL=",".join(urls))
    tokens = [mint_access_token(account_id=f"sticky-{i}-{time.time_ns()}") for i in range(4)]
    ids = add_tokens(service.settings, *tokens)
    client = sdk(service, CODE)
    for _ in range(8):  # round-robin: every account twice
        assert client.chat.completions.create(model="gpt-4o", messages=USER).choices
    by_token: dict[str, set[tuple[int, str]]] = {}
    for port, user, bearer, _path in _Forward.seen:
        if bearer in tokens:
            by_token.setdefault(bearer, set()).add((port, user))
    assert set(by_token) == set(tokens)
    for token, account_id in zip(tokens, ids, strict=True):
        (route,) = by_token[token]  # one proxy and one session for all its requests
        expected = sticky_proxy(urls, account_id)
        assert f":{route[0]}" in expected
        assert route[1] == expected.split("//")[1].split(":")[0]
        assert route[1].startswith("acct-") and "{}" not in route[1]
    assert len({user for routes in by_token.values() for _, user in routes}) == 4


def test_refreshed_account_keeps_its_proxy(
    make_service: ServiceFactory, sim: SimServer, proxies: list[int]
) -> None:
    """A RefreshToken account's new AccessTokens still travel through its own proxy session."""
    urls = [f"http://s-{{}}:pw@127.0.0.1:{port}" for port in proxies]
    service = make_service(
        AUTHORIZATION=CODE, PROXY_URL=",".join(urls), OAUTH_BASE_URL=sim.base_url
    )
    (account_id,) = add_tokens(service.settings, mint_refresh_token(rotate=True))
    client = sdk(service, CODE)
    assert client.chat.completions.create(model="gpt-4o", messages=USER).choices
    sim.state.queue_faults("expired", 1)  # a 401: the account is refreshed, then retried
    assert client.chat.completions.create(model="gpt-4o", messages=USER).choices
    routes = {(port, user) for port, user, bearer, _ in _Forward.seen if bearer.startswith("eyJ")}
    bearers = {bearer for _, _, bearer, _ in _Forward.seen if bearer.startswith("eyJ")}
    assert len(bearers) == 2  # two AccessTokens of the account were used
    (route,) = routes
    assert route[1] == sticky_proxy(urls, account_id).split("//")[1].split(":")[0]
    exchanges = {
        (port, user) for port, user, _, path in _Forward.seen if path.endswith("/oauth/token")
    }
    assert exchanges == {route}  # the RefreshToken exchanges too


def test_token_page_api_shows_each_accounts_proxy(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """The account list names each account's proxy (credentials fingerprinted) and device id."""
    urls = ["http://user-{}:secretpw@127.0.0.1:3128", "http://user-{}:secretpw@127.0.0.1:3129"]
    service = make_service(ADMIN_KEY="sticky-admin", PROXY_URL=",".join(urls))
    ids = add_tokens(service.settings, mint_access_token(), mint_access_token())
    listing = httpx.get(
        service.base_url + "/tokens/api/accounts", headers={"Authorization": "Bearer sticky-admin"}
    ).json()
    for view, account_id in zip(listing["accounts"], ids, strict=True):
        expected = sticky_proxy(urls, account_id)
        assert view["proxy"].endswith("@" + expected.rsplit("@", 1)[1])
        assert "secretpw" not in view["proxy"]
        assert len(view["device_id"]) == 36
    assert listing["accounts"][0]["device_id"] != listing["accounts"][1]["device_id"]


AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.0 Safari/605.1.15",
]


def test_each_account_keeps_its_user_agent_and_browser(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """USER_AGENTS and IMPERSONATE lists: each account draws one of each and keeps it."""
    service = make_service(
        AUTHORIZATION=CODE,
        ADMIN_KEY="sticky-admin",
        USER_AGENTS=json.dumps(AGENTS),
        IMPERSONATE="chrome,safari",
    )
    tokens = [mint_access_token(account_id=f"ua-{i}-{time.time_ns()}") for i in range(4)]
    for _ in range(50):  # until both user agents are drawn (ids are random)
        if {sticky_choice(AGENTS, account_key(t), "user-agent") for t in tokens} == set(AGENTS):
            break
        tokens.append(mint_access_token())
    add_tokens(service.settings, *tokens)
    client = sdk(service, CODE)
    for _ in range(2 * len(tokens)):
        assert client.chat.completions.create(model="gpt-4o", messages=USER).choices
    seen: dict[str, set[str]] = {}
    for record in sim.state.requests:
        bearer = record["headers"].get("authorization", "").removeprefix("Bearer ")
        seen.setdefault(bearer, set()).add(record["headers"]["user-agent"])
    views = httpx.get(
        service.base_url + "/tokens/api/accounts", headers={"Authorization": "Bearer sticky-admin"}
    ).json()["accounts"]
    assert {v["impersonate"] for v in views} <= {"chrome", "safari"}
    for token, view in zip(tokens, views, strict=True):
        (agent,) = seen[token]  # one user agent for all of the account's requests
        assert agent == view["user_agent"]
    assert {v["user_agent"] for v in views} == set(AGENTS)


# -- the TLS fingerprint an account shows, observed where a network sees it


def _client_hello_fingerprint(record: bytes) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(cipher suites, extension types) of a TLS ClientHello record, sorted, GREASE left out.

    Sorted because Chrome shuffles its extensions per connection; padding (21)
    and pre-shared key (41) left out because their presence follows the
    hello's length and earlier sessions, not the browser.
    """
    assert record[0] == 0x16 and record[5] == 0x01, "not a TLS ClientHello"
    body = record[9:]
    at = 2 + 32  # client_version, random
    at += 1 + body[at]  # session id
    suites_len = int.from_bytes(body[at : at + 2], "big")
    suites = [int.from_bytes(body[i : i + 2], "big") for i in range(at + 2, at + 2 + suites_len, 2)]
    at += 2 + suites_len
    at += 1 + body[at]  # compression methods
    end = at + 2 + int.from_bytes(body[at : at + 2], "big")
    at += 2
    extensions = []
    while at < end:
        kind = int.from_bytes(body[at : at + 2], "big")
        extensions.append(kind)
        at += 4 + int.from_bytes(body[at + 2 : at + 4], "big")

    def grease(value: int) -> bool:
        return value & 0x0F0F == 0x0A0A

    return (
        tuple(sorted(s for s in suites if not grease(s))),
        tuple(sorted(e for e in extensions if not grease(e) and e not in (21, 41))),
    )


class _HelloPeek(socketserver.BaseRequestHandler):
    """An HTTPS proxy that opens the CONNECT tunnel, reads the ClientHello, and hangs up."""

    seen: ClassVar[list[tuple[str, tuple[tuple[int, ...], tuple[int, ...]]]]] = []

    def handle(self) -> None:
        stream = self.request.makefile("rb")
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = stream.readline(8192)
            if not line:
                return
            head += line
        user = ""
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "proxy-authorization":
                user = base64.b64decode(value.strip().removeprefix("Basic ")).decode().split(":")[0]
        self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        header = stream.read(5)
        record = header + stream.read(int.from_bytes(header[3:5], "big"))
        _HelloPeek.seen.append((user, _client_hello_fingerprint(record)))


def test_each_account_keeps_its_tls_fingerprint(make_service: ServiceFactory) -> None:
    """IMPERSONATE with two browsers: each account's TLS ClientHello is always its own browser's.

    The upstream is https behind a proxy that records the ClientHello inside
    each account's CONNECT tunnel (its proxy session names the account) and
    then hangs up, so every request fails at its first upstream call (the home
    page, fetched as the account that needs it), which is beside the point.
    """
    tokens = [mint_access_token() for _ in range(6)]
    while (
        len({sticky_choice(["chrome", "safari"], account_key(t), "impersonate") for t in tokens})
        < 2
    ):
        tokens.append(mint_access_token())
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _HelloPeek)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _HelloPeek.seen.clear()
    try:
        url = f"http://acct-{{}}:pw@127.0.0.1:{server.server_address[1]}"
        service = make_service(
            AUTHORIZATION=CODE,
            CHATGPT_BASE_URL="https://chatgpt.invalid",
            PROXY_URL=url,
            IMPERSONATE="chrome,safari",
            RETRY_TIMES="1",
        )
        ids = add_tokens(service.settings, *tokens)
        for _ in range(2 * len(tokens)):
            response = httpx.post(
                service.base_url + "/v1/chat/completions",
                headers={"Authorization": f"Bearer {CODE}"},
                json={"model": "gpt-4o", "messages": USER},
                timeout=60,
            )
            assert response.status_code >= 500  # the tunnel was hung up on
    finally:
        server.shutdown()
        server.server_close()
    session_of = {sticky_proxy([url], i).split("//")[1].split(":")[0]: i for i in ids}
    by_account: dict[str, set[tuple[tuple[int, ...], tuple[int, ...]]]] = {}
    for user, fingerprint in _HelloPeek.seen:
        by_account.setdefault(session_of[user], set()).add(fingerprint)
    assert set(by_account) == set(ids)  # round-robin: every account tried, each twice
    assert len(_HelloPeek.seen) >= 2 * len(ids)
    browser_of = {i: sticky_choice(["chrome", "safari"], i, "impersonate") for i in by_account}
    fingerprint_of: dict[str, set[tuple[tuple[int, ...], tuple[int, ...]]]] = {}
    for account, fingerprints in by_account.items():
        assert len(fingerprints) == 1, "an account showed two TLS fingerprints"
        fingerprint_of.setdefault(browser_of[account], set()).update(fingerprints)
    chrome, safari = fingerprint_of["chrome"], fingerprint_of["safari"]
    assert len(chrome) == len(safari) == 1  # one browser, one fingerprint, whichever account
    assert chrome != safari  # and the two browsers look different on the wire
