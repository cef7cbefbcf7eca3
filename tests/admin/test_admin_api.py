"""The admin JSON API under /tokens/api, over real HTTP against chat2api and the simulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest

from chat2api.sim import SimServer, mint_access_token, mint_refresh_token
from chat2api.store import DB_FILE, account_key, fingerprint
from chat2api.store.sqlite import SQLiteStore
from servers import ServiceFactory, ServiceServer

ADMIN_KEY = "admin-key-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def admin(make_service: ServiceFactory, sim: SimServer) -> ServiceServer:
    """chat2api with ADMIN_KEY set and RefreshTokens exchanged at the simulator.

    Failed logins are not throttled here (LOGIN_ATTEMPTS=0): some tests try many wrong keys.
    """
    return make_service(ADMIN_KEY=ADMIN_KEY, OAUTH_BASE_URL=sim.base_url, LOGIN_ATTEMPTS="0")


@pytest.fixture
def client(admin: ServiceServer) -> Iterator[httpx.Client]:
    """An HTTP client on the admin service, sending the admin key."""
    with httpx.Client(base_url=admin.base_url, headers=AUTH, timeout=30) as http:
        yield http


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


def _store_accounts(service: ServiceServer) -> list[Any]:
    """What the service's SQLite file holds, read through a second connection."""

    async def read() -> list[Any]:
        store = SQLiteStore(service.settings.data_dir / DB_FILE)
        try:
            return await store.list_accounts()
        finally:
            await store.close()

    return asyncio.run(read())


def _cool(service: ServiceServer, account_id: str, model: str, until: float) -> None:
    async def write() -> None:
        store = SQLiteStore(service.settings.data_dir / DB_FILE)
        try:
            await store.set_cooldown(account_id, model, until)
        finally:
            await store.close()

    asyncio.run(write())


def test_missing_or_wrong_key_is_401(admin: ServiceServer) -> None:
    """No key, a wrong key or a non-Bearer scheme get 401 in the OpenAI envelope, on every route."""
    routes = [
        ("GET", "/tokens/api/accounts"),
        ("POST", "/tokens/api/accounts"),
        ("DELETE", "/tokens/api/accounts"),
        ("DELETE", "/tokens/api/accounts/0123456789abcdef"),
        ("POST", "/tokens/api/accounts/revive"),
        ("POST", "/tokens/api/accounts/0123456789abcdef/refresh"),
        ("POST", "/tokens/api/refresh"),
    ]
    headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": f"Bearer {ADMIN_KEY}x"},
        {"Authorization": f"Basic {ADMIN_KEY}"},
    ]
    with httpx.Client(base_url=admin.base_url) as http:
        for method, path in routes:
            for header in headers:
                # A malformed body must not be judged before the key is checked.
                response = http.request(method, path, headers=header, content=b"{")
                assert response.status_code == 401, (method, path, header)
                error = _error(response)
                assert error["code"] == "invalid_admin_key"
                assert error["type"] == "invalid_request_error"
                assert "ADMIN_KEY" in error["message"]
                assert response.headers["www-authenticate"] == "Bearer"


def test_wrong_method_names_every_method_of_the_path(admin: ServiceServer) -> None:
    """PUT on the accounts list is a 405 naming GET, POST and DELETE (and HEAD)."""
    response = httpx.put(admin.base_url + "/tokens/api/accounts", content=b"{}")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST", "DELETE"}
    assert _error(response)["type"] == "invalid_request_error"


def test_disabled_without_admin_key(make_service: ServiceFactory) -> None:
    """Without ADMIN_KEY every API route is 503 admin_disabled, and the page says how to enable."""
    service = make_service()
    with httpx.Client(base_url=service.base_url, headers=AUTH) as http:
        for method, path in [
            ("GET", "/tokens/api/accounts"),
            ("POST", "/tokens/api/accounts"),
            ("DELETE", "/tokens/api/accounts"),
            ("POST", "/tokens/api/refresh"),
        ]:
            response = http.request(method, path, json={"tokens": ""})
            assert response.status_code == 503
            error = _error(response)
            assert error["code"] == "admin_disabled"
            assert "set ADMIN_KEY" in error["message"]
            assert "restart" in error["message"]
        page = http.get("/tokens")
    assert page.status_code == 200
    assert "Token management is disabled" in page.text
    assert "<code>ADMIN_KEY</code>" in page.text
    assert "restart chat2api" in page.text
    assert 'data-enabled="false"' in page.text


def test_add_with_comments_workspaces_and_repeats(client: httpx.Client) -> None:
    """Pasted lines: comments and blanks ignored, token,workspace kept, repeats skipped."""
    access = mint_access_token(plan="team")
    refresh = mint_refresh_token()
    text = f"# my accounts\n\n{access}   # the team one\n{refresh},ws-42\n  \n{access}\n"
    response = client.post("/tokens/api/accounts", json={"tokens": text})
    assert response.status_code == 200
    body = response.json()
    assert body["added"] == 2
    assert body["skipped"] == 1
    assert body["ids"] == [account_key(access), account_key(refresh, "ws-42")]

    again = client.post("/tokens/api/accounts", json={"tokens": access})
    assert again.json() == {"added": 0, "skipped": 1, "ids": []}

    listing = client.get("/tokens/api/accounts").json()
    assert listing["counts"] == {"active": 2, "cooling": 0, "dead": 0, "total": 2}
    first, second = listing["accounts"]
    assert first["id"] == account_key(access)
    assert first["fingerprint"] == fingerprint(access)
    assert first["kind"] == "access_token"
    assert first["plan"] == "team"
    assert first["workspace"] is None
    assert first["state"] == "active"
    assert first["last_used"] is None
    assert (first["successes"], first["failures"]) == (0, 0)
    assert second["kind"] == "refresh_token"
    assert second["workspace"] == "ws-42"
    assert second["fingerprint"] == fingerprint(refresh)


def test_bad_line_is_named_by_number_not_content(
    client: httpx.Client, admin: ServiceServer
) -> None:
    """A line that is not a token gets 400 naming its number, not its text; nothing is added."""
    access = mint_access_token()
    pasted_secret = "sk-proj-pasted-by-mistake-7f3a9c"
    text = f"# header\n{access}\n\n{pasted_secret}\n"
    response = client.post("/tokens/api/accounts", json={"tokens": text})
    assert response.status_code == 400
    error = _error(response)
    assert "line 4" in error["message"]
    assert error["param"] == "tokens"
    assert error["code"] == "invalid_token_list"
    assert pasted_secret not in response.text
    assert access not in response.text
    assert _store_accounts(admin) == []


def test_bad_bodies_are_400(client: httpx.Client) -> None:
    """A body that is not JSON, lacks "tokens", or holds no token at all is a 400."""
    not_json = client.post("/tokens/api/accounts", content=b"eyJ not json")
    assert not_json.status_code == 400
    assert _error(not_json)["code"] == "invalid_json"
    missing = client.post("/tokens/api/accounts", json={"token": "x"})
    assert missing.status_code == 400
    assert "tokens" in _error(missing)["message"]
    empty = client.post("/tokens/api/accounts", json={"tokens": "# only a comment\n\n"})
    assert empty.status_code == 400
    assert "no token" in _error(empty)["message"]


def test_no_response_carries_a_secret(
    client: httpx.Client, admin: ServiceServer, sim: SimServer
) -> None:
    """No answer of any route contains a token given, exchanged or rotated."""
    access = mint_access_token()
    refresh = mint_refresh_token()
    revoked = mint_refresh_token(state="revoked")
    bodies = [
        client.post(
            "/tokens/api/accounts", json={"tokens": f"{access}\n{refresh},ws\n{revoked}"}
        ).text
    ]
    bodies.append(client.get("/tokens/api/accounts").text)
    bodies.append(client.post("/tokens/api/refresh").text)
    refresh_id = account_key(refresh, "ws")
    bodies.append(client.post(f"/tokens/api/accounts/{refresh_id}/refresh").text)
    bodies.append(client.get("/tokens/api/accounts").text)
    bodies.append(client.post("/tokens/api/accounts/revive").text)
    assert sim.state.stats.refreshes == 3
    held = _store_accounts(admin)
    secrets = {access, refresh, revoked}
    for account in held:
        secrets.add(account.secret)
        if account.access_token:
            secrets.add(account.access_token)
    assert len(secrets) >= 5  # the rotated RefreshToken and an exchanged AccessToken too
    bodies.append(client.delete(f"/tokens/api/accounts/{account_key(access)}").text)
    bodies.append(client.delete("/tokens/api/accounts").text)
    for body in bodies:
        for secret in secrets:
            assert secret not in body


def test_remove_one_then_clear(client: httpx.Client) -> None:
    """DELETE by id or fingerprint removes one account; unknown is 404; DELETE all clears."""
    tokens = [mint_access_token() for _ in range(3)]
    assert (
        client.post("/tokens/api/accounts", json={"tokens": "\n".join(tokens)}).json()["added"] == 3
    )
    removed = client.delete(f"/tokens/api/accounts/{account_key(tokens[0])}")
    assert removed.status_code == 200
    assert removed.json() == {
        "removed": account_key(tokens[0]),
        "fingerprint": fingerprint(tokens[0]),
    }
    by_fingerprint = client.delete(f"/tokens/api/accounts/{fingerprint(tokens[1])}")
    assert by_fingerprint.json()["removed"] == account_key(tokens[1])
    listing = client.get("/tokens/api/accounts").json()
    assert [a["id"] for a in listing["accounts"]] == [account_key(tokens[2])]

    missing = client.delete(f"/tokens/api/accounts/{account_key(tokens[0])}")
    assert missing.status_code == 404
    assert _error(missing)["code"] == "account_not_found"

    cleared = client.delete("/tokens/api/accounts")
    assert cleared.json() == {"removed": 1}
    assert client.get("/tokens/api/accounts").json() == {
        "counts": {"active": 0, "cooling": 0, "dead": 0, "total": 0},
        "accounts": [],
    }


def test_revive_makes_dead_active_and_clears_cooldowns(
    client: httpx.Client, admin: ServiceServer
) -> None:
    """A refused RefreshToken makes its account dead; a cooldown shows; revive undoes both."""
    revoked = mint_refresh_token(state="revoked")
    access = mint_access_token()
    client.post("/tokens/api/accounts", json={"tokens": f"{revoked}\n{access}"})
    result = client.post(f"/tokens/api/accounts/{account_key(revoked)}/refresh").json()
    assert result["results"][0]["status"] == "failed"
    assert "refused" in result["results"][0]["error"]
    until = time.time() + 600
    _cool(admin, account_key(access), "gpt-4o", until - 300)
    _cool(admin, account_key(access), "o3", until)
    _cool(admin, account_key(access), "gpt-4", time.time() - 5)  # over: not shown

    listing = client.get("/tokens/api/accounts").json()
    assert listing["counts"] == {"active": 0, "cooling": 1, "dead": 1, "total": 2}
    dead, cooling = listing["accounts"]
    assert dead["state"] == "dead"
    assert "refused" in dead["dead_reason"]
    assert cooling["state"] == "cooling"
    assert cooling["cooldown_until"] == pytest.approx(until)
    assert set(cooling["cooldowns"]) == {"gpt-4o", "o3"}

    revived = client.post("/tokens/api/accounts/revive")
    assert revived.json() == {"revived": 1, "cooldowns_cleared": 1}
    listing = client.get("/tokens/api/accounts").json()
    assert listing["counts"] == {"active": 2, "cooling": 0, "dead": 0, "total": 2}
    assert all(
        a["dead_reason"] is None and a["cooldown_until"] is None for a in listing["accounts"]
    )


def test_refresh_all_and_one(client: httpx.Client, sim: SimServer) -> None:
    """Refresh now exchanges every live RefreshToken; one account refreshes alone."""
    first, second = mint_refresh_token(plan="pro"), mint_refresh_token()
    access = mint_access_token()
    client.post("/tokens/api/accounts", json={"tokens": f"{first}\n{second}\n{access}"})

    everything = client.post("/tokens/api/refresh")
    assert everything.status_code == 200
    results = everything.json()["results"]
    assert [r["id"] for r in results] == [account_key(first), account_key(second)]
    assert all(r["status"] == "refreshed" and r["error"] is None for r in results)
    assert sim.state.stats.refreshes == 2
    listing = client.get("/tokens/api/accounts").json()["accounts"]
    assert listing[0]["plan"] == "pro"
    assert listing[0]["access_expires_at"] > time.time() + 86400
    # Rotation replaced the RefreshToken: the fingerprint follows the held secret.
    assert listing[0]["fingerprint"] == results[0]["fingerprint"] != fingerprint(first)

    one = client.post(f"/tokens/api/accounts/{account_key(second)}/refresh")
    assert one.json()["results"][0]["status"] == "refreshed"
    assert sim.state.stats.refreshes == 3

    not_refreshable = client.post(f"/tokens/api/accounts/{account_key(access)}/refresh")
    assert not_refreshable.status_code == 400
    assert _error(not_refreshable)["code"] == "not_refreshable"
    unknown = client.post("/tokens/api/accounts/ffffffffffffffff/refresh")
    assert unknown.status_code == 404
    assert sim.state.stats.refreshes == 3


def test_routes_follow_api_prefix(make_service: ServiceFactory) -> None:
    """With API_PREFIX the page and the API live under it, and not at the root."""
    service = make_service(ADMIN_KEY=ADMIN_KEY, API_PREFIX="hidden")
    with httpx.Client(base_url=service.base_url, headers=AUTH) as http:
        assert http.get("/hidden/tokens").status_code == 200
        assert http.get("/hidden/tokens/api/accounts").json()["counts"]["total"] == 0
        assert http.get("/tokens").status_code == 404
        assert http.get("/tokens/api/accounts").status_code == 404


def test_page_is_self_contained_and_holds_no_secret(admin: ServiceServer) -> None:
    """The page is one HTML document: no external URL, no admin key, a strict CSP."""
    response = httpx.get(f"{admin.base_url}/tokens")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert ADMIN_KEY not in html
    assert "http://" not in html and "https://" not in html
    assert "<script src" not in html and "<link" not in html
    assert 'data-enabled="true"' in html
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "connect-src 'self'" in csp
    assert response.headers["cache-control"] == "no-store"
