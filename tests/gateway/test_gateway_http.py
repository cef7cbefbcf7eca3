"""The gateway over raw HTTP: login, sessions, seeds, the proxy, blocked endpoints."""

from __future__ import annotations

import http.client
import re
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from chat2api.gateway.blocked import RULES, blocked
from chat2api.gateway.paths import BadPath, encoded, normalise
from chat2api.gateway.proxy import Rewriter
from chat2api.sentinel import DEFAULT_USER_AGENT
from chat2api.sim import SimServer, mint_access_token, mint_refresh_token
from chat2api.upstream.browser import client_hints
from servers import ServiceFactory, ServiceServer, add_tokens, bearers

ADMIN_KEY = "gateway-admin-key-7f2a"
GATEWAY_DOC = Path(__file__).parents[2] / "docs" / "gateway.md"


def gateway(make_service: ServiceFactory, sim: SimServer, **env: Any) -> ServiceServer:
    """chat2api with the gateway on (AUTO_SEED on unless told), RefreshTokens at the simulator."""
    env = {"AUTO_SEED": "true"} | env
    return make_service(ENABLE_GATEWAY="true", OAUTH_BASE_URL=sim.base_url, **env)


def browser(service: ServiceServer) -> httpx.Client:
    """A cookie-keeping client that does not follow redirects."""
    return httpx.Client(base_url=service.base_url, follow_redirects=False, timeout=30)


def log_in(client: httpx.Client, value: str) -> httpx.Response:
    """``GET /?token=value``; asserts the redirect to ``/``."""
    response = client.get("/", params={"token": value})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/"
    return response


def pool_tokens(service: ServiceServer, count: int) -> list[str]:
    """Add ``count`` fresh AccessTokens to the service's pool; the tokens."""
    tokens = [mint_access_token(account_id=f"gw-acct-{i}-{time.time_ns()}") for i in range(count)]
    add_tokens(service.settings, *tokens)
    return tokens


def requirements(client: httpx.Client) -> httpx.Response:
    """One backend call through the gateway, as the web app makes it."""
    return client.post(
        "/backend-api/sentinel/chat-requirements",
        json={"p": "gAAAAACxyz"},
        headers={"Authorization": "Bearer chat2api-gateway-session", "OAI-Device-Id": "dev-1"},
    )


def seen(sim: SimServer, path: str) -> list[dict[str, Any]]:
    """The simulator's records of requests to ``path``."""
    return [r for r in sim.state.requests if r["path"] == path]


def test_gateway_off_has_no_paths(make_service: ServiceFactory) -> None:
    """Without ENABLE_GATEWAY, /login and / are 404 and the API works."""
    service = make_service()
    with browser(service) as client:
        assert client.get("/login").status_code == 404
        assert client.get("/").status_code == 404
        assert client.get("/?token=seed").status_code == 404
        assert client.get("/v1/models").status_code == 200


def test_strangers_go_to_login(make_service: ServiceFactory, sim: SimServer) -> None:
    """Without a session, pages and assets redirect to /login and API calls get 401."""
    service = gateway(make_service, sim)
    pool_tokens(service, 1)
    with browser(service) as client:
        for path in ("/", "/assets/app.js", "/c/abc"):
            response = client.get(path)
            assert response.status_code == 302
            assert response.headers["location"] == "/login"
        for method, path in (
            ("POST", "/backend-api/conversation"),
            ("GET", "/backend-api/models"),
            ("GET", "/api/auth/session"),
            ("POST", "/anything"),
        ):
            response = client.request(method, path)
            assert response.status_code == 401
            assert response.json()["login"] == "/login"
        client.cookies.set("chat2api_gateway", "forged-session-id")
        assert client.get("/").status_code == 302
    assert list(sim.state.requests) == []
    assert sim.state.stats.home == 0


def test_api_routes_are_unaffected(make_service: ServiceFactory, sim: SimServer) -> None:
    """With the gateway on, /v1 and /tokens answer as before; unknown /v1 URLs stay 404."""
    service = gateway(make_service, sim)
    with browser(service) as client:
        assert client.get("/v1/models").status_code == 200
        reply = client.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "say exactly: hi"}]},
        )
        assert reply.status_code == 200
        assert reply.json()["choices"][0]["message"]["content"] == "hi"
        unknown = client.get("/v1/nothing-here")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "unknown_url"
        assert client.get("/tokens").status_code == 200
        assert client.get("/gateway/api/seeds").status_code == 503  # no ADMIN_KEY


def test_seed_login_cookie_and_page(make_service: ServiceFactory, sim: SimServer) -> None:
    """/?token=seed sets an HttpOnly SameSite cookie without the seed; / is the sim's page."""
    service = gateway(make_service, sim)
    tokens = pool_tokens(service, 1)
    with browser(service) as client:
        response = log_in(client, "seed-one")
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("chat2api_gateway=")
        assert "HttpOnly" in cookie
        assert "samesite=lax" in cookie.lower()
        assert "Path=/" in cookie
        assert "Secure" not in cookie  # plain http here
        assert "seed-one" not in cookie and tokens[0] not in cookie
        page = client.get("/")
        assert page.status_code == 200
        assert 'id="user-name"' in page.text and "/assets/app.js" in page.text
        assert client.get("/assets/app.js").status_code == 200
        session = client.get("/api/auth/session").json()
        assert session["user"]["name"] == "seed-one"
        assert session["user"]["email"] == "user@chat2api.local"
        assert session["accessToken"] == "chat2api-gateway-session"
        assert session["authProvider"] == "chat2api"
        assert tokens[0] not in client.get("/api/auth/session").text
    assert sim.state.stats.home == 1


def test_backend_call_carries_the_pool_token_not_cookies(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """The upstream sees the account's bearer and allowed headers, never the browser's cookies."""
    service = gateway(make_service, sim)
    tokens = pool_tokens(service, 1)
    with browser(service) as client:
        log_in(client, "seed-one")
        client.cookies.set("browser-only", "do-not-forward")
        response = client.post(
            "/backend-api/sentinel/chat-requirements",
            json={"p": "gAAAAACxyz"},
            headers={
                "Authorization": "Bearer chat2api-gateway-session",
                "OAI-Device-Id": "dev-1",
                "X-Forwarded-For": "10.1.2.3",
                "X-Not-Allowed": "nope",
                "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/99.0.0.0",
                "Sec-CH-UA": '"Chromium";v="99"',
                "Sec-Fetch-Mode": "cors",
            },
        )
        assert response.status_code == 200, response.text
        assert "token" in response.json()
        assert "set-cookie" not in response.headers
    [record] = seen(sim, "/backend-api/sentinel/chat-requirements")
    headers = record["headers"]
    assert headers["authorization"] == f"Bearer {tokens[0]}"
    # The gateway's user agent, with client hints that match it, not the browser's.
    assert headers["user-agent"] == DEFAULT_USER_AGENT
    assert headers["sec-ch-ua"] == client_hints(DEFAULT_USER_AGENT)["Sec-CH-UA"]
    assert headers["sec-fetch-mode"] == "cors"
    assert headers["oai-device-id"] == "dev-1"
    assert "cookie" not in headers
    assert "x-not-allowed" not in headers and "x-forwarded-for" not in headers


def test_text_bodies_are_rewritten_to_our_origin(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """Upstream URLs in JSON answers point at the gateway, and the rewritten URL works."""
    service = gateway(make_service, sim)
    pool_tokens(service, 1)
    with browser(service) as client:
        log_in(client, "seed-one")
        created = client.post(
            "/backend-api/files",
            json={"file_name": "a.txt", "file_size": 3, "use_case": "my_files"},
        )
        assert created.status_code == 200, created.text
        upload_url = created.json()["upload_url"]
        assert upload_url.startswith(service.base_url + "/_blob/")
        assert sim.base_url not in created.text
        put = client.put(
            upload_url.removeprefix(service.base_url),
            content=b"abc",
            headers={"x-ms-blob-type": "BlockBlob", "Content-Type": "text/plain"},
        )
        assert put.status_code in (200, 201), put.text


def test_rewriter_handles_plain_and_escaped_urls() -> None:
    """Both ``https://up`` and the JSON-escaped ``https:\\/\\/up`` become our origin."""
    rewriter = Rewriter(["https://up.example"], "http://me:5005")
    text = 'a "https://up.example/x" b "https:\\/\\/up.example\\/y" c https://other/z'
    assert rewriter.text(text) == (
        'a "http://me:5005/x" b "http:\\/\\/me:5005\\/y" c https://other/z'
    )
    assert rewriter.body(b"\xff\xfe", "utf-8") == b"\xff\xfe"  # not text: untouched


BLOCKED_CASES = [
    ("GET", "/backend-api/me", 200, "email", "user@chat2api.local"),
    ("GET", "/backend-api/accounts/check/v4-2023-04-27", 200, "account_ordering", ["default"]),
    ("POST", "/backend-api/accounts/deactivate", 403, None, None),
    ("POST", "/backend-api/accounts/logout_all", 403, None, None),
    ("PATCH", "/backend-api/settings/account_user_setting", 403, None, None),
    ("POST", "/backend-api/accounts/data_export", 403, None, None),
    ("GET", "/backend-api/shared_conversations", 403, None, None),
    ("PATCH", "/backend-api/shared_conversations/abc", 403, None, None),
    ("GET", "/backend-api/memories", 200, "memories", []),
    ("DELETE", "/backend-api/memories", 403, None, None),
    ("POST", "/backend-api/user_system_messages", 403, None, None),
    ("GET", "/backend-api/payments/customer_portal", 403, None, None),
    ("GET", "/backend-api/subscriptions", 200, "plan_type", "free"),
    ("GET", "/api-keys", 403, None, None),
    ("GET", "/dashboard/billing", 403, None, None),
    ("GET", "/backend-api/accounts/mfa_info", 403, None, None),
    ("POST", "/backend-api/accounts/acc-1/invites", 403, None, None),
    ("POST", "/api/auth/signout", 403, None, None),
]


def test_blocked_endpoints_never_reach_the_upstream(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """Each blocked endpoint answers 403 or its stub, and the simulator never sees it."""
    service = gateway(make_service, sim)
    tokens = pool_tokens(service, 1)
    with browser(service) as client:
        log_in(client, "seed-one")
        for method, path, status, key, value in BLOCKED_CASES:
            response = client.request(method, path, json={} if method != "GET" else None)
            assert response.status_code == status, (method, path)
            body = response.json()
            if status == 403:
                assert body == {"detail": "Forbidden by chat2api gateway"}
            else:
                assert body[key] == value, path
            assert tokens[0] not in response.text
            assert "sim_stub" not in response.text
        # A path that is not blocked does reach the simulator (so the check above means it).
        assert client.get("/backend-api/settings/user").status_code == 200
    paths = [r["path"] for r in sim.state.requests]
    assert paths == ["/backend-api/settings/user"]
    assert sim.state.hits == {"/backend-api/settings/user": 1}


def _disguises(path: str) -> list[str]:
    """Spellings of ``path`` that a server or libcurl would read as ``path`` itself."""
    head, _, rest = path.lstrip("/").partition("/")
    rest = rest or ""
    return [
        f"/{head}/x/../{rest}",
        f"/{head}/./{rest}",
        f"/{head}/x/%2e%2e/{rest}",
        f"/{head}/x/%2E%2E/{rest}",
        f"/{head}//{rest}",
        f"//{head}/{rest}",
        f"/{head}/{rest}/",
        f"/{head}/{rest};x=1",
        f"/{head}/{rest.upper()}",
        f"/v1/../{head}/{rest}",
        f"/{head}/x/..%2f{rest}",
        f"/{head}/x%2f..%2f{rest}",
        f"/{head}/{rest}%00",
        f"/{head}/x/%252e%252e/{rest}",
        f"/{head}/x/..%5c{rest}",
        "/" + "".join(f"%{ord(c):02x}" if c.isalpha() else c for c in f"{head}/{rest}"),
    ]


def _raw(service: ServiceServer, method: str, target: str, cookie: str) -> tuple[int, bytes]:
    """One request with ``target`` on the request line byte for byte (no client normalising)."""
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    try:
        body = b"{}" if method != "GET" else None
        headers = {"Cookie": cookie, "Content-Type": "application/json"}
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_blocked_endpoints_cannot_be_reached_through_the_path(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """Dot segments, %2e, //, case, ;params, encoded slashes and NUL never unblock a path."""
    service = gateway(make_service, sim)
    tokens = pool_tokens(service, 1)
    with browser(service) as client:
        log_in(client, "seed-one")
        cookie = f"chat2api_gateway={client.cookies['chat2api_gateway']}"
    tried = 0
    for method, path, status, _key, _value in BLOCKED_CASES:
        for target in _disguises(path):
            code, body = _raw(service, method, target, cookie)
            assert code in (status, 400), (method, target, code)
            assert tokens[0].encode() not in body
            tried += 1
    assert tried == len(BLOCKED_CASES) * 16
    assert list(sim.state.requests) == []
    # The same spellings of an allowed path do reach the simulator, as that one path.
    for target in ("/backend-api/x/../settings/user", "/backend-api//settings/%75ser"):
        assert _raw(service, "GET", target, cookie)[0] == 200
    assert [r["path"] for r in sim.state.requests] == ["/backend-api/settings/user"] * 2


def test_gateway_paths_normalise_once() -> None:
    """``normalise`` decodes once, removes dot segments, collapses slashes, refuses the rest."""
    assert normalise(b"/a/b/../c/./d//e") == "/a/c/d/e"
    assert normalise(b"/a/%2e%2e/%2E/b/") == "/b/"
    assert normalise(b"/../../x") == "/x"
    assert normalise(b"/a/%c3%a9") == "/a/\u00e9"
    assert encoded(normalise(b"/a/%c3%a9 b")) == "/a/%C3%A9%20b"
    for bad in (b"/a%2fb", b"/a%5Cb", b"/a%00", b"/a/%252e", b"/a\\b", b"/a/%ff", b"/a%0a"):
        with pytest.raises(BadPath):
            normalise(bad)


def test_blocked_table_is_in_the_docs() -> None:
    """Every row of the blocked table appears in docs/gateway.md."""
    section = GATEWAY_DOC.read_text()
    for rule in RULES:
        shown = rule.pattern.replace("|", "\\|")  # escaped inside a Markdown table
        assert f"`{shown}`" in section, rule.pattern
    assert blocked("GET", "/backend-api/conversation/abc") is None
    assert blocked("GET", "/api/auth/session") is None


def test_seeds_spread_and_survive_a_restart(make_service: ServiceFactory, sim: SimServer) -> None:
    """A second seed gets the other account; after a restart a seed keeps its account."""
    service = gateway(make_service, sim)
    pool_tokens(service, 2)
    used: dict[str, str] = {}
    for seed in ("seed-a", "seed-b"):
        with browser(service) as client:
            log_in(client, seed)
            assert requirements(client).status_code == 200
        used[seed] = bearers(sim, "/chat-requirements")[-1]
    assert used["seed-a"] != used["seed-b"]
    data_dir = service.settings.data_dir
    service.stop()
    env = {"CHATGPT_BASE_URL": sim.base_url, "ENABLE_GATEWAY": "true"}
    with ServiceServer(env, data_dir) as again, browser(again) as client:
        log_in(client, "seed-b")
        assert requirements(client).status_code == 200
    assert bearers(sim, "/chat-requirements")[-1] == used["seed-b"]


def test_empty_pool_refuses_a_seed(make_service: ServiceFactory, sim: SimServer) -> None:
    """With no account to bind, a seed login shows an error and sets no cookie."""
    service = gateway(make_service, sim)
    with browser(service) as client:
        response = client.get("/", params={"token": "seed-one"})
        assert response.status_code == 401
        assert "no usable account" in response.text
        assert "set-cookie" not in response.headers


def test_auto_seed_is_off_by_default(make_service: ServiceFactory, sim: SimServer) -> None:
    """Without AUTO_SEED, a stranger's made-up seed is refused, not bound to a pool account."""
    service = make_service(ENABLE_GATEWAY="true", OAUTH_BASE_URL=sim.base_url)
    pool_tokens(service, 1)
    with browser(service) as client:
        refused = client.get("/", params={"token": "stranger-seed"})
        assert refused.status_code == 401
        assert "Unknown seed" in refused.text
        assert "set-cookie" not in refused.headers
        posted = client.post("/login", data={"token": "another-seed"})
        assert posted.status_code == 401
    assert not [r for r in sim.state.requests if r["path"].startswith("/backend-api")]


def test_auto_seed_off_and_the_seed_api(make_service: ServiceFactory, sim: SimServer) -> None:
    """AUTO_SEED=false refuses unknown seeds; the admin API binds, lists and removes them."""
    service = gateway(make_service, sim, AUTO_SEED="false", ADMIN_KEY=ADMIN_KEY)
    tokens = pool_tokens(service, 2)
    own = mint_access_token(account_id="gw-own-token")
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with browser(service) as client:
        refused = client.get("/", params={"token": "seed-x"})
        assert refused.status_code == 401
        assert "Unknown seed" in refused.text and 'id="error"' in refused.text
        assert "set-cookie" not in refused.headers

        assert client.post("/gateway/api/seeds", json={"seed": "seed-x"}).status_code == 401
        accounts = client.get("/tokens/api/accounts", headers=admin).json()["accounts"]
        second = accounts[1]["id"]
        bad = client.post("/gateway/api/seeds", json={"seed": "seed-x"}, headers=admin)
        assert bad.status_code == 400
        bound = client.post(
            "/gateway/api/seeds", json={"seed": "seed-x", "account_id": second}, headers=admin
        )
        assert bound.status_code == 200, bound.text
        assert bound.json()["account_id"] == second
        by_token = client.post(
            "/gateway/api/seeds", json={"seed": "seed-t", "token": own}, headers=admin
        )
        assert by_token.status_code == 200
        listed = client.get("/gateway/api/seeds", headers=admin)
        assert [s["seed"] for s in listed.json()["seeds"]] == ["seed-t", "seed-x"]
        assert own not in listed.text

    with browser(service) as client:
        log_in(client, "seed-x")
        assert requirements(client).status_code == 200
        assert bearers(sim, "/chat-requirements")[-1] == tokens[1]
        removed = client.delete("/gateway/api/seeds/seed-x", headers=admin)
        assert removed.json() == {"removed": "seed-x"}
        assert client.delete("/gateway/api/seeds/seed-x", headers=admin).status_code == 404
        assert requirements(client).status_code == 401  # the seed is gone: logged out
        assert client.get("/").headers["location"] == "/login"

    with browser(service) as client:
        log_in(client, "seed-t")
        assert requirements(client).status_code == 200
        assert bearers(sim, "/chat-requirements")[-1] == own


def test_login_form_with_tokens(make_service: ServiceFactory, sim: SimServer) -> None:
    """The form logs in with an AccessToken or a RefreshToken (exchanged) and shows errors."""
    service = gateway(make_service, sim)
    access = mint_access_token(account_id="gw-form-at")
    with browser(service) as client:
        form = client.get("/login")
        assert form.status_code == 200
        assert 'name="token"' in form.text and 'action="/login"' in form.text
        assert "default-src 'none'" in form.headers["content-security-policy"]
        empty = client.post("/login", data={"token": "  "})
        assert empty.status_code == 401 and 'id="error"' in empty.text
        bad_rt = client.post("/login", data={"token": mint_refresh_token(state="revoked")})
        assert bad_rt.status_code == 401 and "RefreshToken did not work" in bad_rt.text
        ok = client.post("/login", data={"token": access})
        assert ok.status_code == 303 and ok.headers["location"] == "/"
        assert access not in ok.headers["set-cookie"]
        assert requirements(client).status_code == 200
        assert client.get("/api/auth/session").json()["user"]["name"] == "chat2api"
    assert bearers(sim, "/chat-requirements")[-1] == access

    with browser(service) as client:
        assert client.post("/login", data={"token": mint_refresh_token()}).status_code == 303
        assert requirements(client).status_code == 200
    exchanged = bearers(sim, "/chat-requirements")[-1]
    assert exchanged.startswith("eyJ") and exchanged != access
    assert sim.state.stats.refreshes == 2  # the revoked one, then the good one


def test_logout_ends_the_session(make_service: ServiceFactory, sim: SimServer) -> None:
    """/auth/logout deletes the session (the old cookie stops working) and goes to /login."""
    service = gateway(make_service, sim)
    pool_tokens(service, 1)
    with browser(service) as client:
        log_in(client, "seed-one")
        sid = client.cookies["chat2api_gateway"]
        assert client.get("/").status_code == 200
        out = client.get("/auth/logout")
        assert out.status_code == 302 and out.headers["location"] == "/login"
        assert re.search(r"chat2api_gateway=\"?\"?;", out.headers["set-cookie"])
        assert client.get("/").headers["location"] == "/login"
    with browser(service) as replay:
        replay.cookies.set("chat2api_gateway", sid)
        assert replay.get("/").status_code == 302
    assert "/auth/logout" not in sim.state.hits


@pytest.mark.slow
def test_sse_arrives_incrementally(make_service: ServiceFactory, sim: SimServer) -> None:
    """The first SSE event reaches the browser long before the upstream stream ends."""
    sim.state.config = sim.state.config.patched({"pow_required": False, "require_sentinel": False})
    service = gateway(make_service, sim)
    tokens = pool_tokens(service, 1)
    body = {
        "action": "next",
        "messages": [
            {
                "id": "m1",
                "author": {"role": "user"},
                "content": {
                    "content_type": "text",
                    "parts": ["#sim:words=8 #sim:delay_ms=250 tell me something"],
                },
            }
        ],
        "model": "auto",
        "parent_message_id": "p1",
        "supported_encodings": [],
    }
    with browser(service) as client:
        log_in(client, "seed-one")
        start = time.monotonic()
        with client.stream(
            "POST", "/backend-api/conversation", json=body, headers={"Accept": "text/event-stream"}
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            chunks = response.iter_bytes()
            first = next(chunks)
            first_at = time.monotonic() - start
            rest = b"".join(chunks)
            total = time.monotonic() - start
    assert first.startswith(b"data:") or first.startswith(b"event:")
    assert b"[DONE]" in first + rest
    assert total > 1.5
    assert first_at < total - 1.0
    [record] = seen(sim, "/backend-api/conversation")
    assert record["headers"]["authorization"] == f"Bearer {tokens[0]}"


def _conversation(text: str) -> dict[str, Any]:
    """A minimal legacy conversation body with one user message."""
    return {
        "action": "next",
        "messages": [
            {
                "id": "m1",
                "author": {"role": "user"},
                "content": {"content_type": "text", "parts": [text]},
            }
        ],
        "model": "auto",
        "parent_message_id": "p1",
        "supported_encodings": [],
    }


def test_leaving_a_stream_frees_the_account(make_service: ServiceFactory, sim: SimServer) -> None:
    """A browser that drops a stream aborts it upstream and gives the account's slot back."""
    sim.state.config = sim.state.config.patched({"pow_required": False, "require_sentinel": False})
    service = gateway(make_service, sim, ACCOUNT_CONCURRENCY="1", POOL_WAIT_SECONDS="1")
    pool_tokens(service, 1)
    with browser(service) as client:
        log_in(client, "seed-one")
        slow = _conversation("#sim:words=40 #sim:delay_ms=200 go on")
        with client.stream("POST", "/backend-api/conversation", json=slow) as response:
            assert response.status_code == 200
            next(response.iter_bytes())
        deadline = time.monotonic() + 5
        while sim.state.stats.streams_cancelled == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sim.state.stats.streams_cancelled == 1
        quick = client.post("/backend-api/conversation", json=_conversation("say exactly: ok"))
        assert quick.status_code == 200, quick.text
        assert b"[DONE]" in quick.content
        head = client.head("/")
        assert head.status_code == 200
        assert head.content == b""
