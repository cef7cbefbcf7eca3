"""Two tokens of one ChatGPT account are one pool account: the second updates the first."""

from __future__ import annotations

import time
import uuid

import httpx2 as httpx
import openai
import pytest

from chat2api.pool.jwt import token_identity
from chat2api.sim import SimServer, mint_access_token, mint_refresh_token
from chat2api.store.base import account_key
from servers import ServiceFactory, ServiceServer, bearers, sdk, stored_accounts

ADMIN_KEY = "same-account-admin"
CODE = "same-account-code"
USER = [{"role": "user", "content": "say exactly: ok"}]


def admin_add(service: ServiceServer, *tokens: str) -> dict[str, object]:
    """Add tokens through the admin JSON API; its answer."""
    response = httpx.post(
        service.base_url + "/tokens/api/accounts",
        json={"tokens": "\n".join(tokens)},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def pooled(make_service: ServiceFactory, sim: SimServer) -> ServiceServer:
    return make_service(ADMIN_KEY=ADMIN_KEY, AUTHORIZATION=CODE, OAUTH_BASE_URL=sim.base_url)


def test_identity_is_account_and_user() -> None:
    """The identity of a token is its chatgpt_account_id and user id; other JWTs have none."""
    token = mint_access_token(account_id="acct-1", user_id="user-1")
    assert token_identity(token) == "acct-1:user-1"
    assert token_identity("not.a.jwt") is None


def test_second_access_token_updates_the_first(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """A newer AccessToken of the same account replaces the old one; no second account."""
    service = pooled(make_service, sim)
    account, user = f"acct-{uuid.uuid4()}", f"user-{uuid.uuid4().hex}"
    old = mint_access_token(account_id=account, user_id=user, expires_in=3600)
    new = mint_access_token(account_id=account, user_id=user, expires_in=86400)
    first = admin_add(service, old)
    assert first["added"] == 1
    second = admin_add(service, new)
    assert (second["added"], second["skipped"]) == (0, 1)
    (stored,) = stored_accounts(service.settings).values()
    assert stored.id == account_key(old)  # the first account, kept
    assert stored.access_token == new and stored.secret == new
    assert sdk(service, CODE).chat.completions.create(model="gpt-4o", messages=USER).choices
    assert bearers(sim, "/conversation")[-1] == new
    # An older token of the same account changes nothing.
    admin_add(service, old)
    (stored,) = stored_accounts(service.settings).values()
    assert stored.access_token == new


def test_same_call_keeps_the_fresher(make_service: ServiceFactory, sim: SimServer) -> None:
    """Two tokens of one account in one paste are one account holding the later-expiring one."""
    service = pooled(make_service, sim)
    account, user = f"acct-{uuid.uuid4()}", f"user-{uuid.uuid4().hex}"
    later = mint_access_token(account_id=account, user_id=user, expires_in=86400)
    sooner = mint_access_token(account_id=account, user_id=user, expires_in=3600)
    body = admin_add(service, later, sooner)
    assert (body["added"], body["skipped"]) == (1, 1)
    (stored,) = stored_accounts(service.settings).values()
    assert stored.access_token == later


def test_other_user_of_a_shared_workspace_is_another_account(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """Same chatgpt_account_id (a Team workspace) but another user: two accounts."""
    service = pooled(make_service, sim)
    account = f"team-{uuid.uuid4()}"
    admin_add(service, mint_access_token(account_id=account, user_id="user-a", plan="team"))
    admin_add(service, mint_access_token(account_id=account, user_id="user-b", plan="team"))
    assert len(stored_accounts(service.settings)) == 2


def test_new_token_brings_a_dead_account_back(make_service: ServiceFactory, sim: SimServer) -> None:
    """An account marked dead after a 401 is active again once a fresh token of it is added."""
    service = pooled(make_service, sim)
    account, user = f"acct-{uuid.uuid4()}", f"user-{uuid.uuid4().hex}"
    expired = mint_access_token(account_id=account, user_id=user, state="expired")
    admin_add(service, expired)
    with pytest.raises(openai.AuthenticationError):
        sdk(service, CODE).chat.completions.create(model="auto", messages=USER)
    (dead,) = stored_accounts(service.settings).values()
    assert dead.status == "dead"
    fresh = mint_access_token(account_id=account, user_id=user)
    admin_add(service, fresh)
    (alive,) = stored_accounts(service.settings).values()
    assert (alive.id, alive.status, alive.access_token) == (dead.id, "active", fresh)


def test_access_token_updates_a_refresh_token_account(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """After a RefreshToken account's exchange, an AccessToken of that account updates it."""
    service = pooled(make_service, sim)
    account = f"acct-{uuid.uuid4()}"
    admin_add(service, mint_refresh_token(account_id=account))
    assert sdk(service, CODE).chat.completions.create(model="gpt-4o", messages=USER).choices
    (refreshed,) = stored_accounts(service.settings).values()
    identity = token_identity(refreshed.access_token or "")
    assert identity is not None and identity.startswith(account + ":")
    user = identity.split(":", 1)[1]
    given = mint_access_token(account_id=account, user_id=user, expires_in=30 * 86400)
    time.sleep(0.01)
    body = admin_add(service, given)
    assert body["added"] == 0
    (updated,) = stored_accounts(service.settings).values()
    assert updated.kind == "refresh_token" and updated.id == refreshed.id
    assert updated.access_token == given
    assert updated.secret == refreshed.secret  # the RefreshToken stays the account's secret
