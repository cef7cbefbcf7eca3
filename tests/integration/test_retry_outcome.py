"""Every retry path ends with the upstream's own error, not the pool's "all cooling".

A pool of two accounts where one is cooling down: the request fails on the
other, the retry finds only the cooling one, and the client must still learn
what the upstream did (502, 504, 401), not a 429 with minutes of Retry-After.
"""

from __future__ import annotations

import asyncio
import socket
import time

import openai
import pytest

from chat2api.sim import SimServer, mint_access_token, mint_refresh_token
from chat2api.store import open_store
from servers import ServiceFactory, ServiceServer, add_tokens, sdk, stored_accounts

CODE = "retry-code"
USER = [{"role": "user", "content": "say exactly: ok"}]


def cool(service: ServiceServer, account_id: str, seconds: float = 600.0) -> None:
    """Cool one account for every model in the service's store, from outside."""

    async def run() -> None:
        store = open_store(service.settings)
        try:
            await store.set_cooldown(account_id, "*", time.time() + seconds)
        finally:
            await store.close()

    asyncio.run(run())


def pool_with_one_cooling(
    make_service: ServiceFactory, sim: SimServer, working: str, **env: object
) -> tuple[ServiceServer, str]:
    """A pool of ``working`` and a cooling account; returns the service and the working id."""
    service = make_service(AUTHORIZATION=CODE, OAUTH_BASE_URL=sim.base_url, RETRY_TIMES=3, **env)
    cooling_id, working_id = add_tokens(
        service.settings, mint_access_token(account_id="cooling"), working
    )
    cool(service, cooling_id)
    return service, working_id


def failure(service: ServiceServer) -> openai.APIStatusError:
    """The error the SDK raises for one chat request."""
    with pytest.raises(openai.APIStatusError) as info:
        sdk(service, CODE).chat.completions.create(model="gpt-4o", messages=USER)
    return info.value


def code_of(error: openai.APIStatusError) -> object:
    body = error.body
    assert isinstance(body, dict)
    return body["code"]


def test_5xx_then_only_cooling_accounts_is_502(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """A 5xx on the last usable account ends in 502 upstream_unavailable, not 429."""
    service, _ = pool_with_one_cooling(make_service, sim, mint_access_token(account_id="w"))
    sim.state.queue_faults("server_error", 5)
    error = failure(service)
    assert error.status_code == 502
    assert code_of(error) == "upstream_unavailable"
    assert "retry-after" not in error.response.headers
    assert sim.state.stats.conversations == 1


def test_connect_error_then_only_cooling_accounts_is_502(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """A dead PROXY_URL ends in 502 upstream_connect_error, not 429."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    service, _ = pool_with_one_cooling(
        make_service,
        sim,
        mint_access_token(account_id="w"),
        PROXY_URL=f"http://127.0.0.1:{dead}",
    )
    error = failure(service)
    assert error.status_code == 502
    assert code_of(error) == "upstream_connect_error"
    assert sim.state.stats.conversations == 0


def test_timeout_then_only_cooling_accounts_is_504(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """An upstream that times out ends in 504 upstream_timeout, not 429."""
    service, _ = pool_with_one_cooling(
        make_service, sim, mint_access_token(account_id="w"), UPSTREAM_TIMEOUT=1
    )
    sim.state.config = sim.state.config.patched({"slow_seconds": 1.6})
    sim.state.queue_faults("slow", 1)
    error = failure(service)
    assert error.status_code == 504
    assert code_of(error) == "upstream_timeout"
    time.sleep(1.0)  # let the abandoned upstream request end inside this test


def test_401_after_refresh_then_only_cooling_accounts_is_401(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """A token refused again after its refresh ends in 401 upstream_unauthorized, not 429."""
    service, working_id = pool_with_one_cooling(
        make_service, sim, mint_refresh_token(account_id="w")
    )
    sim.state.queue_faults("expired", 2)
    error = failure(service)
    assert error.status_code == 401
    assert code_of(error) == "upstream_unauthorized"
    assert sim.state.stats.refreshes >= 2  # the first use and the refresh after the 401
    assert stored_accounts(service.settings)[working_id].status == "dead"


def test_all_attempts_rate_limited_keeps_the_pools_429(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """When the attempt itself was a rate limit, the pool's 429 with its Retry-After stands."""
    service, _ = pool_with_one_cooling(
        make_service, sim, mint_access_token(state="rate_limited", clears_in=30, account_id="w")
    )
    error = failure(service)
    assert error.status_code == 429
    assert code_of(error) == "all_accounts_cooling"
    assert 25 <= int(error.response.headers["retry-after"]) <= 30
