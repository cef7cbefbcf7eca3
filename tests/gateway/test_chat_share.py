"""Chat-Share's calls to the original's seed API, in its order, over real HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx2 as httpx
import pytest

from chat2api.sim import SimServer, mint_access_token, mint_refresh_token
from servers import ServiceFactory, ServiceServer, bearers, stored_accounts

CODE = "share-code-1"
ADMIN_KEY = "share-admin-key"


def share_site(make_service: ServiceFactory, sim: SimServer, **env: Any) -> ServiceServer:
    """chat2api as Chat-Share expects it: gateway on, AUTO_SEED off, an AUTHORIZATION code."""
    return make_service(
        ENABLE_GATEWAY="true",
        AUTO_SEED="false",
        AUTHORIZATION=CODE,
        ADMIN_KEY=ADMIN_KEY,
        OAUTH_BASE_URL=sim.base_url,
        **env,
    )


def call(
    service: ServiceServer, method: str, body: dict[str, Any], key: str = CODE
) -> httpx.Response:
    """One seed API call as a share site's server makes it (no Origin, no cookies)."""
    return httpx.request(
        method,
        service.base_url + "/seedtoken",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def login(service: ServiceServer, seed: str) -> tuple[httpx.Response, httpx.Client]:
    """A user's browser following the share site's link ``/?token=<seed>``."""
    client = httpx.Client(base_url=service.base_url, follow_redirects=False, timeout=30)
    return client.get("/", params={"token": seed}), client


def login_status(service: ServiceServer, seed: str) -> httpx.Response:
    """The answer to ``/?token=<seed>`` from a fresh browser (closed again)."""
    response, client = login(service, seed)
    client.close()
    return response


def chat_requirements(client: httpx.Client) -> int:
    """One web-app backend call through the gateway; its status."""
    response = client.post(
        "/backend-api/sentinel/chat-requirements",
        json={"p": "gAAAAACxyz"},
        headers={"Authorization": "Bearer chat2api-gateway-session"},
    )
    return response.status_code


def test_chat_share_sequence(make_service: ServiceFactory, sim: SimServer) -> None:
    """Bind, sync (clear then re-bind all), unbind, and users logging in through /?token=."""
    service = share_site(make_service, sim)
    alice_token = mint_access_token(account_id=f"share-a-{time.time_ns()}")
    bob_token = mint_refresh_token(account_id=f"share-b-{time.time_ns()}")
    users = {"seed-alice": alice_token, "seed-bob": bob_token}

    # 1. Bind each user as they are created.
    for seed, token in users.items():
        response = call(service, "POST", {"seed": seed, "token": token})
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "success", "message": "Token updated successfully"}
    assert len(stored_accounts(service.settings)) == 2  # both accounts joined the pool

    # 2. Sync: clear every binding, then bind them all again.
    cleared = call(service, "DELETE", {"seed": "clear"})
    assert cleared.json() == {"status": "success", "message": "All seeds deleted successfully"}
    assert login_status(service, "seed-alice").status_code == 401  # cleared means cleared
    for seed, token in users.items():
        assert call(service, "POST", {"seed": seed, "token": token}).status_code == 200
    assert len(stored_accounts(service.settings)) == 2  # re-binding added no duplicate

    # 3. Unbind one user.
    removed = call(service, "DELETE", {"seed": "seed-bob"})
    assert removed.json() == {
        "status": "success",
        "message": "Seed 'seed-bob' deleted successfully",
    }
    assert call(service, "DELETE", {"seed": "seed-bob"}).status_code == 404

    # 4. Users log in through the link.
    response, alice = login(service, "seed-alice")
    try:
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        assert alice.get("/api/auth/session").json()["user"]["name"] == "seed-alice"
        assert chat_requirements(alice) == 200
    finally:
        alice.close()
    assert bearers(sim, "/chat-requirements")[-1] == alice_token
    response = login_status(service, "seed-bob")
    assert response.status_code == 401
    assert "set-cookie" not in response.headers

    listed = httpx.get(
        service.base_url + "/seedtoken", headers={"Authorization": f"Bearer {CODE}"}
    ).json()
    assert listed["status"] == "success"
    assert set(listed["data"]) == {"seed-alice"}
    assert alice_token not in str(listed) and bob_token not in str(listed)


def test_empty_token_takes_any_pool_account(make_service: ServiceFactory, sim: SimServer) -> None:
    """An empty token registers the seed; its first login binds it to a pool account."""
    service = share_site(make_service, sim)
    pooled = mint_access_token(account_id=f"share-p-{time.time_ns()}")
    call(service, "POST", {"seed": "seed-pool", "token": pooled})
    assert call(service, "POST", {"seed": "seed-any", "token": ""}).status_code == 200
    response, client = login(service, "seed-any")
    try:
        assert response.status_code == 303
        assert chat_requirements(client) == 200
    finally:
        client.close()
    assert bearers(sim, "/chat-requirements")[-1] == pooled


def test_admin_key_works_and_other_keys_do_not(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """ADMIN_KEY is accepted like an AUTHORIZATION code; any other key is a 401, nothing bound."""
    service = share_site(make_service, sim)
    token = mint_access_token(account_id=f"share-k-{time.time_ns()}")
    ok = call(service, "POST", {"seed": "seed-k", "token": token}, key=ADMIN_KEY)
    assert ok.status_code == 200
    wrong = call(service, "POST", {"seed": "seed-w", "token": token}, key="nope")
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    bare = httpx.post(service.base_url + "/seedtoken", json={"seed": "s", "token": token})
    assert bare.status_code == 401
    assert token not in wrong.text and token not in bare.text
    assert login_status(service, "seed-w").status_code == 401


@pytest.mark.parametrize(
    ("body", "param"),
    [({"seed": "", "token": ""}, "seed"), ({"seed": "s", "token": "not a token"}, "token")],
)
def test_bad_bodies_are_400(
    make_service: ServiceFactory, sim: SimServer, body: dict[str, str], param: str
) -> None:
    """An empty seed or a token that is neither kind is a 400 naming the field."""
    service = share_site(make_service, sim)
    response = call(service, "POST", body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_api_prefix_keeps_seedtoken_at_the_root(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """With API_PREFIX set, /seedtoken and /?token= stay where the original served them."""
    service = share_site(make_service, sim, API_PREFIX="secret")
    token = mint_access_token(account_id=f"share-x-{time.time_ns()}")
    assert call(service, "POST", {"seed": "seed-x", "token": token}).status_code == 200
    prefixed = httpx.get(
        service.base_url + "/secret/seedtoken", headers={"Authorization": f"Bearer {CODE}"}
    )
    assert set(prefixed.json()["data"]) == {"seed-x"}
    assert login_status(service, "seed-x").status_code == 303
