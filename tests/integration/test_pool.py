"""The account pool against the simulator's valid, expired, rate-limited and flagged accounts."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import httpx2 as httpx
import openai
import pytest

from chat2api.sim import SimServer, mint_access_token, mint_refresh_token
from chat2api.store import Account, open_store
from servers import (
    SENTINEL_START,
    ServiceFactory,
    ServiceServer,
    bearers,
    sdk,
    send_path,
    sentinel_rounds,
    stored_accounts,
)
from servers import add_tokens as add_tokens_to

ALL_ERAS = True  # each test runs against the simulator in every era (conftest.ERAS)

CODE = "pool-code-1"
USER = [{"role": "user", "content": "say exactly: ok"}]


def add_tokens(service: ServiceServer, *tokens: str) -> list[str]:
    """Add tokens to the service's store from outside, as the CLI does."""
    return add_tokens_to(service.settings, *tokens)


def accounts(service: ServiceServer) -> dict[str, Account]:
    """The service's accounts by id, read from its store."""
    return stored_accounts(service.settings)


def served_by(sim: SimServer) -> list[str]:
    """The bearer token of every conversation the simulator saw, in order."""
    return bearers(sim, "/conversation")


def tried(sim: SimServer) -> list[str]:
    """The bearer token of every attempt (each starts with a sentinel call), in order."""
    return bearers(sim, *SENTINEL_START)


def pooled(make_service: ServiceFactory, sim: SimServer, **env: Any) -> ServiceServer:
    """A service whose AUTHORIZATION code serves the pool; OAuth goes to the simulator."""
    return make_service(AUTHORIZATION=CODE, OAUTH_BASE_URL=sim.base_url, **env)


def test_round_robin_order(make_service: ServiceFactory, sim: SimServer) -> None:
    """Accounts are used in turn, oldest first, wrapping around."""
    service = pooled(make_service, sim)
    tokens = [mint_access_token(account_id=f"acct-{i}") for i in range(3)]
    add_tokens(service, *tokens)
    client = sdk(service, CODE)
    for _ in range(6):
        client.chat.completions.create(model="gpt-4o", messages=USER)
    used = served_by(sim)
    assert used == used[:3] * 2
    assert sorted(used[:3]) == sorted(tokens)


def test_random_spread(make_service: ServiceFactory, sim: SimServer) -> None:
    """RANDOM_TOKEN=true spreads requests over every account, not in a fixed cycle."""
    service = pooled(make_service, sim, RANDOM_TOKEN="true")
    tokens = [mint_access_token(account_id=f"r-{i}") for i in range(4)]
    add_tokens(service, *tokens)
    client = sdk(service, CODE)
    for _ in range(40):
        client.chat.completions.create(model="gpt-4o", messages=USER)
    used = served_by(sim)
    counts = Counter(used)
    assert set(counts) == set(tokens)
    assert min(counts.values()) >= 3
    assert used != used[:4] * 10  # not round-robin


def test_cooldown_from_clears_in(make_service: ServiceFactory, sim: SimServer) -> None:
    """A 429 with clears_in cools that account for that model and the request moves on."""
    service = pooled(make_service, sim)
    limited = mint_access_token(state="rate_limited", clears_in=120, account_id="lim")
    good = mint_access_token(account_id="good")
    limited_id, good_id = add_tokens(service, limited, good)
    client = sdk(service, CODE)
    before = time.time()
    for _ in range(4):
        assert client.chat.completions.create(model="gpt-4o", messages=USER).choices
    assert served_by(sim) == [limited, good, good, good, good]
    cooled = accounts(service)[limited_id]
    assert before + 119 <= cooled.cooldowns["gpt-4o"] <= time.time() + 121
    assert cooled.status == "active"
    # The cooldown is per model: another model may still use the account.
    client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert served_by(sim)[-1] in (limited, good)
    assert accounts(service)[good_id].successes >= 4


def test_all_cooling_is_429_with_soonest_retry_after(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """When every account is cooling, the client gets 429 with Retry-After of the soonest."""
    service = pooled(make_service, sim)
    add_tokens(
        service,
        mint_access_token(state="rate_limited", clears_in=100, account_id="a"),
        mint_access_token(state="rate_limited", clears_in=200, account_id="b"),
    )
    client = sdk(service, CODE)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o", messages=USER)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o", messages=USER)
    assert 98 <= int(info.value.response.headers["retry-after"]) <= 100
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "all_accounts_cooling"
    assert sim.state.stats.conversations == 2  # the second request never went upstream


def test_expired_account_is_marked_dead(make_service: ServiceFactory, sim: SimServer) -> None:
    """A 401 on an AccessToken account marks it dead with the reason; the next one answers."""
    service = pooled(make_service, sim)
    expired = mint_access_token(state="expired", account_id="old")
    good = mint_access_token(account_id="new")
    expired_id, _ = add_tokens(service, expired, good)
    client = sdk(service, CODE)
    assert client.chat.completions.create(model="gpt-4o", messages=USER).choices
    assert tried(sim) == [expired, good]
    assert served_by(sim) == [good]
    dead = accounts(service)[expired_id]
    assert dead.status == "dead"
    assert dead.dead_reason is not None and "refused" in dead.dead_reason
    assert expired not in (dead.dead_reason or "")
    client.chat.completions.create(model="gpt-4o", messages=USER)
    assert served_by(sim)[-1] == good


def test_flagged_account_retried_on_next(make_service: ServiceFactory, sim: SimServer) -> None:
    """403 unusual activity moves the request to another account, without a dead mark."""
    service = pooled(make_service, sim)
    flagged = mint_access_token(state="flagged", account_id="f")
    good = mint_access_token(account_id="g")
    flagged_id, _ = add_tokens(service, flagged, good)
    assert sdk(service, CODE).chat.completions.create(model="gpt-4o", messages=USER).choices
    assert served_by(sim) == [flagged, good]
    assert accounts(service)[flagged_id].status == "active"
    assert accounts(service)[flagged_id].failures == 1


def test_client_errors_not_retried_on_other_accounts(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """An upstream 400-class refusal of the request is not retried on another account."""
    service = pooled(make_service, sim)
    add_tokens(service, mint_access_token(account_id="x"), mint_access_token(account_id="y"))
    with pytest.raises(openai.BadRequestError):
        sdk(service, CODE).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x #sim:fault=no-such-fault"}]
        )
    assert sim.state.stats.conversations == 1


def test_empty_pool_code_uses_login_free(make_service: ServiceFactory, sim: SimServer) -> None:
    """With an AUTHORIZATION code and no account yet, the login-free flow answers."""
    service = pooled(make_service, sim)
    assert sdk(service, CODE).chat.completions.create(model="auto", messages=USER).choices
    assert [r["path"] for r in sim.state.requests if r["path"].endswith("/conversation")] == [
        send_path(sim, "/backend-anon")
    ]


def test_wrong_key_is_401(make_service: ServiceFactory, sim: SimServer) -> None:
    """With AUTHORIZATION set, any other key (or none) is refused with 401."""
    service = pooled(make_service, sim)
    with pytest.raises(openai.AuthenticationError) as info:
        sdk(service, "not-the-code").chat.completions.create(model="gpt-4o", messages=USER)
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "invalid_api_key"
    bare = httpx.post(
        service.openai_base_url + "/chat/completions", json={"model": "gpt-4o", "messages": USER}
    )
    assert bare.status_code == 401
    assert sim.state.stats.conversations == 0


def test_per_account_limit_queues_then_refuses(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """Over the per-account limit, requests wait for a slot, and past the wait get 503."""
    service = pooled(make_service, sim, ACCOUNT_CONCURRENCY=1, POOL_WAIT_SECONDS=10)
    add_tokens(service, mint_access_token(account_id="solo"))
    client = sdk(service, CODE)
    slow = [{"role": "user", "content": "slow #sim:words=30 #sim:delay_ms=40"}]
    done: list[str] = []

    def call() -> None:
        result = client.chat.completions.create(model="gpt-4o", messages=slow)
        done.append(result.choices[0].message.content or "")

    first = threading.Thread(target=call)
    first.start()
    deadline = time.monotonic() + 10
    while sim.state.stats.streams_started < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    second = threading.Thread(target=call)
    second.start()
    time.sleep(0.3)  # the first stream lasts at least 30 x 40 ms
    assert sim.state.stats.conversations == 1  # the second request is waiting for the slot
    first.join()
    second.join()
    assert len(done) == 2 and all(done)
    assert sim.state.stats.conversations == 2

    busy = pooled(make_service, sim, ACCOUNT_CONCURRENCY=1, POOL_WAIT_SECONDS=0.3)
    add_tokens(busy, mint_access_token(account_id="solo2"))
    busy_client = sdk(busy, CODE)
    holder = threading.Thread(
        target=lambda: busy_client.chat.completions.create(model="gpt-4o", messages=slow)
    )
    holder.start()
    time.sleep(0.3)
    with pytest.raises(openai.InternalServerError) as info:
        busy_client.chat.completions.create(model="gpt-4o", messages=USER)
    holder.join()
    assert info.value.status_code == 503
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "accounts_busy"


def test_refresh_on_demand_and_rotation_stored(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """A RefreshToken account is exchanged once, its AccessToken reused, the rotated RT stored."""
    service = pooled(make_service, sim)
    refresh = mint_refresh_token(account_id="rt-acct")
    (account_id,) = add_tokens(service, refresh)
    client = sdk(service, CODE)
    client.chat.completions.create(model="gpt-4o", messages=USER)
    client.chat.completions.create(model="gpt-4o", messages=USER)
    assert sim.state.stats.refreshes == 1
    stored = accounts(service)[account_id]
    assert stored.secret != refresh and stored.secret.startswith("rt_")
    assert stored.access_token is not None
    assert served_by(sim) == [stored.access_token] * 2
    assert stored.access_expires_at is not None and stored.access_expires_at > time.time() + 8e5


def test_refresh_is_single_flight(make_service: ServiceFactory, sim: SimServer) -> None:
    """Twenty concurrent requests needing the same refresh make one upstream exchange."""
    sim.state.config = sim.state.config.patched({"refresh_delay": 0.5})
    service = pooled(make_service, sim, ACCOUNT_CONCURRENCY=20)
    add_tokens(service, mint_refresh_token(account_id="sf"))
    client = sdk(service, CODE)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.chat.completions.create(model="gpt-4o", messages=USER)
        except openai.APIError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sim.state.stats.refreshes == 1
    assert sim.state.stats.conversations == 20


def test_401_refreshes_once_then_retries(make_service: ServiceFactory, sim: SimServer) -> None:
    """A 401 on a RefreshToken account triggers one refresh and the request succeeds."""
    service = pooled(make_service, sim)
    (account_id,) = add_tokens(service, mint_refresh_token(account_id="re"))

    async def plant_refused_token() -> None:
        store = open_store(service.settings)
        try:
            await store.set_tokens(
                account_id,
                access_token=mint_access_token(state="expired", expires_in=864000),
                access_expires_at=time.time() + 864000,
            )
        finally:
            await store.close()

    asyncio.run(plant_refused_token())
    result = sdk(service, CODE).chat.completions.create(model="gpt-4o", messages=USER)
    assert result.choices[0].message.content == "ok"
    assert sim.state.stats.refreshes == 1
    assert sentinel_rounds(sim) == 2  # the refused token's attempt, then the fresh one
    assert accounts(service)[account_id].status == "active"


def test_revoked_refresh_token_marks_dead(make_service: ServiceFactory, sim: SimServer) -> None:
    """A RefreshToken the OAuth endpoint refuses marks its account dead; the next serves."""
    service = pooled(make_service, sim)
    revoked_id, _ = add_tokens(
        service, mint_refresh_token(state="revoked"), mint_access_token(account_id="ok")
    )
    assert sdk(service, CODE).chat.completions.create(model="gpt-4o", messages=USER).choices
    dead = accounts(service)[revoked_id]
    assert dead.status == "dead"
    assert dead.dead_reason is not None and "refused" in dead.dead_reason


def test_client_refresh_token_is_exchanged_and_cached(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """A RefreshToken sent as the key is exchanged once and its AccessToken reused."""
    service = make_service(OAUTH_BASE_URL=sim.base_url)
    client = sdk(service, mint_refresh_token(rotate=False, account_id="mine"))
    client.chat.completions.create(model="gpt-4o", messages=USER)
    client.chat.completions.create(model="gpt-4o", messages=USER)
    assert sim.state.stats.refreshes == 1
    used = served_by(sim)
    assert used[0] == used[1] and used[0].startswith("eyJ")
