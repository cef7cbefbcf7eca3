"""The gateway's seed records in the store: one per seed, and the index of them all.

Below the gateway so that the admin tools (the legacy import) can bind seeds
without importing the gateway; ``gateway.identity`` owns what seeds mean.
"""

from __future__ import annotations

from typing import Any

from chat2api.store.base import Store

__all__ = ["INDEX_KEY", "INDEX_KIND", "INDEX_LOCK_TTL", "SEED", "put_seed"]

SEED = "seed"
INDEX_KIND, INDEX_KEY = "gateway", "seeds"
INDEX_LOCK_TTL = 10.0


async def put_seed(store: Store, seed: str, record: dict[str, Any]) -> None:
    """Store a seed's record and its line in the index (under the index lock).

    ``record`` holds ``account_id``, or ``token``/``token_kind``/``workspace``,
    or ``any_account``; used by the admin API, ``/seedtoken`` and the legacy import.
    """
    async with store.lock("gateway-seeds", INDEX_LOCK_TTL):
        await store.put_record(SEED, seed, record)
        data = await store.get_record(INDEX_KIND, INDEX_KEY)
        seeds = data.get("seeds", {}) if data else {}
        index = dict(seeds) if isinstance(seeds, dict) else {}
        index[seed] = record.get("account_id")
        await store.put_record(INDEX_KIND, INDEX_KEY, {"seeds": index})
