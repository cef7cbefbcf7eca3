"""Where a request's account comes from, and what happens after it was used.

A ``Lease`` is one account held for one conversation. ``failed`` records the
failure (cooldown, dead mark, refresh) and says whether another attempt may
succeed; only then does the turn retry, on a fresh lease. Two sources exist:
``FixedAccount`` (the client brought its own token) and the pool's.
"""

from __future__ import annotations

from typing import Protocol

from chat2api.errors import UpstreamError, UpstreamModelUnavailable, UpstreamRateLimited
from chat2api.values import Credentials


class Lease(Protocol):
    """An account held for one conversation."""

    key: str  # a non-secret id of the account (for ``exclude`` and logs)
    credentials: Credentials
    retry_same: bool  # after ``failed``: the same account may be tried again

    async def succeeded(self) -> None: ...

    async def failed(self, exc: UpstreamError) -> bool:
        """Record ``exc``; True when another attempt (maybe another account) may succeed."""
        ...

    async def release(self) -> None:
        """Give the account back; safe to call more than once."""
        ...


class AccountSource(Protocol):
    """Hands out leases; ``exclude`` names accounts that already failed this request."""

    async def acquire(self, model: str, exclude: frozenset[str]) -> Lease: ...


class FixedLease:
    """The client's own account: retried as is when the failure is transient."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self.key = "client"
        self.retry_same = True

    async def succeeded(self) -> None:
        return None

    async def failed(self, exc: UpstreamError) -> bool:
        # A rate limit or a missing model belongs to the account: it will not do better.
        return exc.retryable and not isinstance(exc, UpstreamRateLimited | UpstreamModelUnavailable)

    async def release(self) -> None:
        return None


class FixedAccount:
    """An ``AccountSource`` that always gives the same credentials."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    async def acquire(self, model: str, exclude: frozenset[str]) -> Lease:
        return FixedLease(self.credentials)
