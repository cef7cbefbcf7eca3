"""Each pool account keeps one proxy and one proxy session (`{}` in PROXY_URL) for its life."""

from __future__ import annotations

import base64
import json
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
