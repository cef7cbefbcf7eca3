"""Two tokens of one ChatGPT account are one pool account: the second updates the first."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest
import redis

from chat2api.pool.jwt import token_identity
from chat2api.settings import Settings, load_settings
from chat2api.sim import SimServer, mint_access_token, mint_refresh_token
from chat2api.store import open_store
from chat2api.store.base import Account, Store, account_key
from chat2api.store.seeds import put_seed
from servers import ServiceFactory, ServiceServer, bearers, sdk, stored_accounts

ADMIN_KEY = "same-account-admin"
CODE = "same-account-code"
USER = [{"role": "user", "content": "say exactly: ok"}]
REDIS_URL = "redis://127.0.0.1:6379/0"


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


SEED = "seed-of-the-second-token"


def _store_env(store: str) -> dict[str, str]:
    """chat2api's settings for a fresh store of that kind (a random Redis prefix)."""
    if store == "sqlite":
        return {}
    return {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": f"test-{uuid.uuid4().hex}"}


def _drop_prefix(env: dict[str, str]) -> None:
    if "REDIS_PREFIX" in env:
        with redis.Redis.from_url(REDIS_URL) as client:
            keys = list(client.scan_iter(match=env["REDIS_PREFIX"] + ":*", count=1000))
            if keys:
                client.delete(*keys)


def _cli_list(service: ServiceServer, env: dict[str, str]) -> list[dict[str, object]]:
    """``chat2api tokens list --json`` on the service's store, in a subprocess."""
    cleared = ("REDIS_URL", "REDIS_PREFIX", "ADMIN_KEY", "API_PREFIX", "PROXY_URL", "COLUMNS")
    result = subprocess.run(
        [sys.executable, "-m", "chat2api", "tokens", "list", "--json"],
        env={k: v for k, v in os.environ.items() if k not in cleared}
        | {"DATA_DIR": str(service.settings.data_dir)}
        | env,
        cwd=service.settings.data_dir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    accounts: list[dict[str, object]] = json.loads(result.stdout)["accounts"]
    return accounts


def _admin(service: ServiceServer, method: str, path: str) -> dict[str, Any]:
    response = httpx.request(
        method,
        service.base_url + path,
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _seed(service: ServiceServer, method: str, **params: str) -> httpx.Response:
    """The share sites' seed API (``/seedtoken``), as a share site's server calls it."""
    return httpx.request(
        method,
        service.base_url + "/seedtoken",
        json=params if method == "POST" else None,
        params=params if method == "GET" else None,
        headers={"Authorization": f"Bearer {CODE}"},
        timeout=30,
    )


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_two_refresh_tokens_of_one_user_become_one_account(
    make_service: ServiceFactory, sim: SimServer, store: str
) -> None:
    """Two RefreshTokens of one user are two accounts until refreshed, then one; the seed
    bound to the dropped one reaches the merged one, which keeps the first one's identity."""
    env = _store_env(store)
    try:
        service = make_service(
            ADMIN_KEY=ADMIN_KEY,
            AUTHORIZATION=CODE,
            OAUTH_BASE_URL=sim.base_url,
            ENABLE_GATEWAY="true",
            AUTO_SEED="false",
            **env,
        )
        account = f"acct-{uuid.uuid4()}"
        first = mint_refresh_token(account_id=account)
        second = mint_refresh_token(account_id=account)
        kept, dropped = account_key(first), account_key(second)
        assert admin_add(service, first)["added"] == 1
        bound = _seed(service, "POST", seed=SEED, token=second)
        assert bound.status_code == 200, bound.text
        assert set(stored_accounts(service.settings)) == {kept, dropped}  # nothing known yet
        assert _seed(service, "GET", seed=SEED).json()["data"]["token"] == dropped
        before = {a["id"]: a for a in _admin(service, "GET", "/tokens/api/accounts")["accounts"]}

        results = _admin(service, "POST", "/tokens/api/refresh")["results"]
        assert [(r["id"], r["status"], r["merged_into"]) for r in results] == [
            (kept, "refreshed", None),
            (dropped, "refreshed", kept),
        ]

        (shown,) = _admin(service, "GET", "/tokens/api/accounts")["accounts"]
        assert shown["id"] == kept and shown["kind"] == "refresh_token"
        assert shown["device_id"] == before[kept]["device_id"]  # the first one's identity
        assert [a["id"] for a in _cli_list(service, env)] == [kept]
        (merged,) = stored_accounts(service.settings).values()
        assert merged.secret not in (first, second)  # the rotated RefreshToken of the last refresh
        assert merged.access_token is not None and merged.identity is not None

        # Requests run on it.
        reply = sdk(service, CODE).chat.completions.create(model="gpt-4o", messages=USER)
        assert reply.choices[0].message.content
        assert bearers(sim, "/conversation")[-1] == merged.access_token

        # The seed bound to the dropped account now names, and logs in to, the merged one.
        assert _seed(service, "GET", seed=SEED).json()["data"]["token"] == kept
        with httpx.Client(base_url=service.base_url, timeout=30) as browser:
            login = browser.get("/", params={"token": SEED}, follow_redirects=False)
            assert login.status_code == 303, login.text
            sentinel = browser.post(
                "/backend-api/sentinel/chat-requirements",
                json={"p": "gAAAAACxyz"},
                headers={"Authorization": "Bearer chat2api-gateway-session"},
            )
            assert sentinel.status_code == 200, sentinel.text
        assert bearers(sim, "/chat-requirements")[-1] == merged.access_token
        assert len(stored_accounts(service.settings)) == 1
    finally:
        _drop_prefix(env)


def test_requests_merge_refresh_tokens_as_they_refresh(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """Without an admin refresh: the requests that pick each account refresh it and merge."""
    service = pooled(make_service, sim)
    account = f"acct-{uuid.uuid4()}"
    tokens = [mint_refresh_token(account_id=account) for _ in range(3)]
    admin_add(service, *tokens)
    assert len(stored_accounts(service.settings)) == 3
    client = sdk(service, CODE)
    sent = 0
    while len(stored_accounts(service.settings)) > 1 and sent < 8:  # round-robin reaches each
        assert client.chat.completions.create(model="gpt-4o", messages=USER).choices
        sent += 1
    (merged,) = stored_accounts(service.settings).values()
    assert merged.id == account_key(tokens[0])
    assert merged.successes == sent  # every account's count, pooled


def _store_do(settings: Settings, action: Callable[[Store], Awaitable[object]]) -> None:
    """Run ``action`` on the store ``settings`` name, from outside the service."""

    async def run() -> None:
        store = open_store(settings)
        try:
            await action(store)
        finally:
            await store.close()

    asyncio.run(run())


def test_a_seed_left_on_a_merged_id_is_rebound_when_used(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """A seed still naming the dropped id (a crash before its rebind) logs in and is rebound."""
    service = make_service(
        ADMIN_KEY=ADMIN_KEY,
        AUTHORIZATION=CODE,
        OAUTH_BASE_URL=sim.base_url,
        ENABLE_GATEWAY="true",
        AUTO_SEED="false",
    )
    account = f"acct-{uuid.uuid4()}"
    first, second = (mint_refresh_token(account_id=account) for _ in range(2))
    admin_add(service, first, second)
    _admin(service, "POST", "/tokens/api/refresh")
    kept, dropped = account_key(first), account_key(second)
    assert set(stored_accounts(service.settings)) == {kept}
    # As if the process had died after the merge and before the seeds were rebound:
    _store_do(service.settings, lambda store: put_seed(store, "late", {"account_id": dropped}))
    assert _seed(service, "GET", seed="late").json()["data"]["token"] == dropped
    with httpx.Client(base_url=service.base_url, timeout=30) as browser:
        login = browser.get("/", params={"token": "late"}, follow_redirects=False)
        assert login.status_code == 303, login.text
    assert _seed(service, "GET", seed="late").json()["data"]["token"] == kept


def test_start_merges_accounts_stored_without_identities(
    make_service: ServiceFactory, sim: SimServer, tmp_path: Path
) -> None:
    """A store written before identities were kept: at start, its twins become one."""
    account, user = f"acct-{uuid.uuid4()}", f"user-{uuid.uuid4().hex}"
    older = mint_access_token(account_id=account, user_id=user, expires_in=3600)
    newer = mint_access_token(account_id=account, user_id=user, expires_in=86400)
    settings = load_settings({"DATA_DIR": str(tmp_path)}, env_file=None)
    twins = [
        Account(id=account_key(t), kind="access_token", secret=t, access_token=t)
        for t in (older, newer)
    ]
    for twin in twins:  # no identity recorded, as an older version stored them
        _store_do(settings, lambda store, twin=twin: store.add_accounts([twin]))
    assert len(stored_accounts(settings)) == 2
    service = make_service(AUTHORIZATION=CODE, DATA_DIR=str(tmp_path))
    for _ in range(200):  # the check runs in the background at start: bounded polling
        if len(stored_accounts(service.settings)) == 1:
            break
        time.sleep(0.05)
    (merged,) = stored_accounts(service.settings).values()
    assert (merged.id, merged.access_token) == (account_key(older), newer)
    assert merged.identity is not None
