"""Scheduled refresh (``SCHEDULED_REFRESH=true``), and the identity check at start.

Once at start, then every ``REFRESH_CHECK_SECONDS`` (an hour by default),
every RefreshToken account whose AccessToken has less than five days left is
refreshed. AccessTokens live ten days, so each account is exchanged about
every five days, spread over the day rather than all at one hour (the
original refreshed everything every 4 days at a fixed time). A refresh is
single-flight, so several instances doing this at once make one exchange
per account.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from chat2api.errors import Chat2APIError
from chat2api.pool.pool import AccountPool

log = logging.getLogger(__name__)


async def refresh_due(pool: AccountPool) -> int:
    """Refresh the accounts that are due; returns how many were refreshed."""
    results = await pool.refresh_all(due_only=True)
    failed = sum(1 for error in results.values() if error)
    if results:
        log.info("scheduled refresh: %d refreshed, %d failed", len(results) - failed, failed)
    return len(results) - failed


async def scheduled_refresh(
    pool: AccountPool,
    interval: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Run ``refresh_due`` now and then every ``interval`` seconds, until cancelled."""
    while True:
        try:
            await refresh_due(pool)
        except Chat2APIError as exc:  # a store or network hiccup must not end the schedule
            log.warning("scheduled refresh failed: %s", exc.message)
        await sleep(interval)


async def identities_at_start(pool: AccountPool) -> int:
    """Record the identities the store lacks (``AccountPool.learn_identities``), once.

    Run at start in the background: a store written before identities were
    kept (or by a process that died before recording one) gets them, and
    two accounts of one ChatGPT account among them are merged.
    """
    try:
        learnt = await pool.learn_identities()
    except Chat2APIError as exc:
        log.warning("identity check at start failed: %s", exc.message)
        return 0
    if learnt:
        log.info("identity check at start: %d account(s) recorded", learnt)
    return learnt
