"""Per-account concurrency slots shared by every process and instance on one store.

``ACCOUNT_CONCURRENCY`` is a limit on the account, not on one process: with
``serve --workers N`` or several instances on one Redis, a slot is a lease
in the store (``Store.take_slot``), taken atomically against the limit. A
lease expires ``SLOT_LEASE_SECONDS`` after it was last renewed; this
process renews the leases it holds every third of that, so a worker killed
mid-answer (``kill -9``) blocks its accounts for one lease time at most.

A local count of the slots this process holds is kept as well: when it is
already at the limit, the store is not asked; and when the store cannot
write (a full disk, a Redis outage), slots are counted locally with a
warning, so the pool goes on serving, as choosing an account needs no write.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets

from chat2api.errors import StoreUnavailable
from chat2api.store.base import Store

log = logging.getLogger(__name__)

LOCAL = "local:"  # a lease counted in this process only (the store could not write)


class SharedSlots:
    """Takes, renews and frees the store's slots for one process (module docstring)."""

    def __init__(self, store: Store, limit: int, ttl: float) -> None:
        self.store = store
        self.limit = limit
        self.ttl = ttl
        self._prefix = f"{os.getpid()}-{secrets.token_hex(4)}-"
        self._ids = itertools.count(1)
        self._local: dict[str, int] = {}
        self._held: dict[str, str] = {}  # lease -> account id, renewed while held
        self._renewing: asyncio.Task[None] | None = None
        self._warned = False

    def local(self, account_id: str) -> int:
        """Slots of ``account_id`` this process holds."""
        return self._local.get(account_id, 0)

    def full_here(self, account_id: str) -> bool:
        """This process alone holds the limit: no need to ask the store."""
        return self._local.get(account_id, 0) >= self.limit

    async def take(self, account_id: str) -> str | None:
        """A lease on one slot of ``account_id``, or None while every slot is held."""
        if self.full_here(account_id):
            return None
        lease = self._prefix + str(next(self._ids))
        try:
            taken = await self.store.take_slot(account_id, lease, self.limit, self.ttl)
        except StoreUnavailable as exc:
            if not self._warned:
                self._warned = True
                log.warning("counting account slots in this process only: %s", exc.message)
            lease, taken = LOCAL + lease, True
        if not taken:
            return None
        self._local[account_id] = self._local.get(account_id, 0) + 1
        if not lease.startswith(LOCAL):
            self._warned = False
            self._held[lease] = account_id
            if self._renewing is None or self._renewing.done():
                self._renewing = asyncio.get_running_loop().create_task(self._renew())
        return lease

    async def free(self, account_id: str, lease: str) -> None:
        """Give the slot back, here and in the store."""
        left = self._local.get(account_id, 0) - 1
        if left > 0:
            self._local[account_id] = left
        else:
            self._local.pop(account_id, None)
        if self._held.pop(lease, None) is None:
            return
        try:
            await self.store.free_slot(account_id, lease)
        except StoreUnavailable as exc:  # it expires by itself, unrenewed
            log.warning("account slot left to expire: %s", exc.message)

    async def _renew(self) -> None:
        """Renew the held leases every third of their lifetime, while there are any."""
        while self._held:
            await asyncio.sleep(self.ttl / 3)
            held = [(account_id, lease) for lease, account_id in self._held.items()]
            try:
                await self.store.renew_slots(held, self.ttl)
            except StoreUnavailable as exc:
                log.warning("account slots not renewed: %s", exc.message)
