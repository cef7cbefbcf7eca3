"""The gateway's seed records in the store: one per seed, and the index of them all.

Below the gateway so that the admin tools (the legacy import) can bind seeds
without importing the gateway; ``gateway.identity`` owns what seeds mean.
"""

from __future__ import annotations

from typing import Any

from chat2api.store.base import Store

__all__ = ["INDEX_KEY", "INDEX_KIND", "INDEX_LOCK_TTL", "SEED", "put_seed", "rebind_seeds"]

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


async def rebind_seeds(store: Store, old: str, new: str) -> int:
    """Point every seed bound to account ``old`` at ``new`` (merged into it); how many.

    Not needed for the seeds to work (``get_account`` follows a merged id),
    but the index counts seeds per account for the even spread and the admin
    list shows the id. A seed found still naming ``old`` later (the process
    died before this ran) is rebound when it is next used.
    """
    moved = 0
    async with store.lock("gateway-seeds", INDEX_LOCK_TTL):
        data = await store.get_record(INDEX_KIND, INDEX_KEY)
        seeds = data.get("seeds", {}) if data else {}
        index = dict(seeds) if isinstance(seeds, dict) else {}
        for seed, bound in index.items():
            if bound != old:
                continue
            record = await store.get_record(SEED, seed)
            if record is not None and record.get("account_id") == old:
                await store.put_record(SEED, seed, record | {"account_id": new})
            index[seed] = new
            moved += 1
        if moved:
            await store.put_record(INDEX_KIND, INDEX_KEY, {"seeds": index})
    return moved
