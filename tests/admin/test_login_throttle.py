"""Failed admin-key and gateway logins are throttled per address and logged without the guess."""

from __future__ import annotations

import logging

import httpx2 as httpx
import pytest

from chat2api.sim import SimServer, mint_access_token
from servers import ServiceFactory, add_tokens

ADMIN_KEY = "throttle-admin-key-5d1f"
GUESS = "guess-7c1e9a"


def test_admin_key_guessing_is_throttled(
    make_service: ServiceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """After LOGIN_ATTEMPTS wrong keys an address gets 429 even with the right key; others not."""
    caplog.set_level(logging.INFO)
    service = make_service(ADMIN_KEY=ADMIN_KEY, LOGIN_ATTEMPTS="3")
    url = service.base_url + "/tokens/api/accounts"
    for n in range(3):
        wrong = httpx.get(url, headers={"Authorization": f"Bearer {GUESS}{n}"})
        assert wrong.status_code == 401
    blocked = httpx.get(url, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "too_many_attempts"
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    # Another client address is not held back by this one's failures.
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as other:
        assert other.get(url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200
    failures = [m for r in caplog.records if (m := r.getMessage()).startswith("failed admin key")]
    assert len(failures) == 3
    assert "127.0.0.1" in failures[0]
    assert all(GUESS not in r.getMessage() for r in caplog.records)


def test_gateway_login_guessing_is_throttled(
    make_service: ServiceFactory, sim: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused gateway logins count too: past the limit the login form answers 429."""
    caplog.set_level(logging.INFO)
    service = make_service(ENABLE_GATEWAY="true", LOGIN_ATTEMPTS="2", OAUTH_BASE_URL=sim.base_url)
    add_tokens(service.settings, mint_access_token(account_id="throttle-acct"))
    with httpx.Client(base_url=service.base_url, follow_redirects=False) as client:
        for n in range(2):
            assert client.post("/login", data={"token": f"{GUESS}{n}"}).status_code == 401
        held = client.post("/login", data={"token": "another"})
        assert held.status_code == 429
        assert "retry-after" in held.headers
        assert "Too many failed" in held.text
        assert client.get("/", params={"token": "x"}).status_code == 429
    assert all(GUESS not in r.getMessage() for r in caplog.records)
    assert sum(r.getMessage().startswith("failed gateway login") for r in caplog.records) == 2
