"""Download links for generated images and files (served by ``api.downloads``).

A link is ``{base}/v1/files/download/<token>``: the token is a random
capability naming a record in the store (what to fetch, from which
conversation, as which account), valid for ``DOWNLOAD_TTL``. Links work
from any instance sharing the store, need no API key (the token is the key),
and never carry a secret.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import orjson

from chat2api.pool.lease import Lease
from chat2api.pool.pool import PoolLease
from chat2api.protocol.events import ImageGenerated
from chat2api.store.base import Store
from chat2api.store.sealed import Sealer

__all__ = ["DOWNLOAD", "DOWNLOAD_TTL", "DownloadLinks", "record_key"]

DOWNLOAD = "download"
DOWNLOAD_TTL = 7 * 86400.0


def record_key(link: str) -> str:
    """Where a link's record lives: a hash of the link, which the store never sees."""
    return hashlib.sha256(link.encode()).hexdigest()


class DownloadLinks:
    """Makes download links for one answer (implements ``convert.generated.Links``).

    A client's own AccessToken is sealed in the record under a key derived
    from the link itself, and the record is stored under the link's hash:
    the store alone (its file, a backup, Redis) does not give the token away.
    """

    def __init__(self, store: Store, base_url: str, lease: Lease) -> None:
        self._store = store
        self._base = base_url.rstrip("/")
        credentials = lease.credentials
        self._account: dict[str, Any] = (
            {"pool_account": lease.key}
            if isinstance(lease, PoolLease)
            else {"device": credentials.device if credentials.anonymous else None}
        )
        self._own: str | None = None
        if not isinstance(lease, PoolLease) and credentials.access_token:
            own = {"access_token": credentials.access_token, "workspace": credentials.account_id}
            self._own = orjson.dumps(own).decode()

    async def _link(self, record: dict[str, Any]) -> str:
        link = secrets.token_urlsafe(24)
        account = dict(self._account)
        if self._own is not None:
            account["sealed"] = Sealer(link, purpose="download").seal(self._own)
        await self._store.put_record(
            DOWNLOAD, record_key(link), {**record, **account}, DOWNLOAD_TTL
        )
        return f"{self._base}/v1/files/download/{link}"

    async def image(self, image: ImageGenerated, conversation_id: str | None) -> str:
        return await self._link(
            {
                "conversation_id": conversation_id,
                "message_id": image.message_id,
                "asset_pointer": image.asset_pointer,
                "pending": image.pending,
            }
        )

    async def sandbox(self, path: str, conversation_id: str | None, message_id: str | None) -> str:
        return await self._link(
            {
                "conversation_id": conversation_id,
                "message_id": message_id,
                "sandbox_path": path,
            }
        )
