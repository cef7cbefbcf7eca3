"""Another site's page cannot log a browser in or out, or change anything, through the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx2 as httpx
import pytest

from chat2api.sim import SimServer, mint_access_token
from servers import ServiceFactory, ServiceServer, add_tokens

ADMIN_KEY = "csrf-admin-key-3c9e"
# What a browser sends for a request another site's page made, with and without Fetch Metadata.
FOREIGN = [
    {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    {"Sec-Fetch-Site": "same-site", "Origin": "https://other.example.org"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
]


@pytest.fixture
def service(make_service: ServiceFactory, sim: SimServer) -> ServiceServer:
    """The gateway (AUTO_SEED on) with one pool account and an admin key."""
    started = make_service(
        ENABLE_GATEWAY="true", AUTO_SEED="true", ADMIN_KEY=ADMIN_KEY, OAUTH_BASE_URL=sim.base_url
    )
    add_tokens(started.settings, mint_access_token(account_id="csrf-acct"))
    return started


def _logged_in_as(client: httpx.Client, seed: str) -> None:
    """The browser's session is ``seed``'s."""
    session = client.get("/api/auth/session")
    assert session.status_code == 200
    assert session.json()["user"]["name"] == seed


@contextmanager
def _browser(service: ServiceServer, seed: str) -> Iterator[httpx.Client]:
    """A cookie-keeping client logged in as ``seed`` from the gateway's own page."""
    with httpx.Client(base_url=service.base_url, follow_redirects=False, timeout=30) as client:
        own = {"Sec-Fetch-Site": "same-origin", "Origin": service.base_url}
        assert client.post("/login", data={"token": seed}, headers=own).status_code == 303
        _logged_in_as(client, seed)
        yield client


@pytest.mark.parametrize("headers", FOREIGN)
def test_foreign_login_form_is_refused(service: ServiceServer, headers: dict[str, str]) -> None:
    """A login form posted from another site is a 403 and leaves the session as it was."""
    with _browser(service, "victim") as client:
        refused = client.post("/login", data={"token": "attacker"}, headers=headers)
        assert refused.status_code == 403
        assert "set-cookie" not in refused.headers
        assert "another site" in refused.text
        _logged_in_as(client, "victim")


def test_foreign_login_link_asks_first(service: ServiceServer) -> None:
    """A /?token= link followed from another site shows the form filled in, and logs no one in."""
    with _browser(service, "victim") as client:
        shown = client.get(
            "/", params={"token": "attacker<x>"}, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert shown.status_code == 200
        assert "set-cookie" not in shown.headers
        assert 'value="attacker&lt;x&gt;"' in shown.text
        _logged_in_as(client, "victim")
        # Typed or opened from another app (Sec-Fetch-Site: none), the link logs in as before.
        typed = client.get("/", params={"token": "second"}, headers={"Sec-Fetch-Site": "none"})
        assert typed.status_code == 303
        _logged_in_as(client, "second")


def test_foreign_logout_and_writes_are_refused(service: ServiceServer, sim: SimServer) -> None:
    """Another site can neither end the session nor send a write through the proxy."""
    foreign = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
    with _browser(service, "victim") as client:
        assert client.get("/auth/logout", headers=foreign).status_code == 302
        _logged_in_as(client, "victim")
        before = len(sim.state.requests)
        write = client.post(
            "/backend-api/sentinel/chat-requirements",
            json={"p": "gAAAAACxyz"},
            headers=foreign | {"Authorization": "Bearer chat2api-gateway-session"},
        )
        assert write.status_code == 403
        assert len(sim.state.requests) == before
        own = client.post(
            "/backend-api/sentinel/chat-requirements",
            json={"p": "gAAAAACxyz"},
            headers={"Sec-Fetch-Site": "same-origin", "OAI-Device-Id": "dev-1"},
        )
        assert own.status_code == 200


@pytest.mark.parametrize("headers", FOREIGN)
def test_foreign_admin_writes_are_refused(service: ServiceServer, headers: dict[str, str]) -> None:
    """The admin and seed APIs refuse changes a foreign page asks for, even with the key."""
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    token = mint_access_token(account_id="csrf-new")
    with httpx.Client(base_url=service.base_url, timeout=30) as client:
        for path, body in (
            ("/tokens/api/accounts", {"tokens": token}),
            ("/gateway/api/seeds", {"seed": "s", "token": token}),
        ):
            refused = client.post(path, json=body, headers=admin | headers)
            assert refused.status_code == 403
            assert refused.json()["error"]["code"] == "cross_site_request"
        listed = client.get("/tokens/api/accounts", headers=admin | headers)
        assert listed.status_code == 200
        assert len(listed.json()["accounts"]) == 1
        own = client.post(
            "/tokens/api/accounts",
            json={"tokens": token},
            headers=admin | {"Sec-Fetch-Site": "same-origin"},
        )
        assert own.status_code == 200
