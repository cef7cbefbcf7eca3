"""Scheduled refresh, driven by an injected clock and sleep."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from chat2api.pool.pool import AccountPool
from chat2api.pool.schedule import refresh_due, scheduled_refresh
from chat2api.pool.tokens import parse_token
from chat2api.sim import SimServer, mint_refresh_token
from chat2api.store.sqlite import SQLiteStore
from chat2api.upstream.auth import OAuthClient
from chat2api.upstream.http import SessionPool

DAY = 86400.0


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


async def _setup(sim: SimServer, path: Path, clock: FakeClock) -> tuple[AccountPool, list[str]]:
    store = SQLiteStore(path)
    pool = AccountPool(store, OAuthClient(SessionPool(), sim.base_url), clock=clock)
    ids = await pool.add_tokens(
        [parse_token(mint_refresh_token(account_id=name)) for name in ("soon", "later")]
    )
    for account_id, days_left in zip(ids, (3, 8), strict=True):
        await store.set_tokens(
            account_id,
            access_token=f"eyJplaceholder{account_id}",
            access_expires_at=clock.now + days_left * DAY,
        )
    return pool, ids


def test_refresh_due_takes_only_accounts_near_expiry(sim: SimServer, tmp_path: Path) -> None:
    """Only AccessTokens with under five days left are refreshed; later ones when due."""
    clock = FakeClock()

    async def run() -> None:
        pool, (soon, later) = await _setup(sim, tmp_path / "s.db", clock)
        assert await refresh_due(pool) == 1
        assert sim.state.stats.refreshes == 1
        fresh = await pool.store.get_account(soon)
        assert fresh is not None and fresh.access_token is not None
        assert fresh.access_token.startswith("eyJhbGci")
        clock.now += 4 * DAY  # "later" now has 4 days left; "soon" was renewed for 10
        assert await refresh_due(pool) == 1
        assert sim.state.stats.refreshes == 2
        renewed = await pool.store.get_account(later)
        assert renewed is not None and renewed.access_token != f"eyJplaceholder{later}"
        assert await refresh_due(pool) == 0
        await pool.store.close()

    asyncio.run(run())


def test_schedule_runs_at_start_then_every_interval(sim: SimServer, tmp_path: Path) -> None:
    """The schedule refreshes at once, then after each interval, until cancelled."""
    clock = FakeClock()
    sleeps: list[float] = []

    async def run() -> None:
        pool, _ = await _setup(sim, tmp_path / "t.db", clock)

        async def fake_sleep(seconds: float) -> None:
            sleeps.append(seconds)
            clock.now += 4 * DAY
            if len(sleeps) == 3:
                raise asyncio.CancelledError

        with pytest.raises(asyncio.CancelledError):
            await scheduled_refresh(pool, 3600.0, sleep=fake_sleep)
        await pool.store.close()

    asyncio.run(run())
    assert sleeps == [3600.0, 3600.0, 3600.0]
    # start: "soon"; +4 days: "later"; +8 days: "soon" again (renewed 8 days ago).
    assert sim.state.stats.refreshes == 3
