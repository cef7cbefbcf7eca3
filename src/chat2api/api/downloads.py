"""Download links for generated images and files, and the route that serves them.

A link is ``{base}/v1/files/download/<token>``: the token is a random
capability naming a record in the store (what to fetch, from which
conversation, as which account), valid for ``DOWNLOAD_TTL``. Fetching it
resolves the upstream's signed URL as that account (waiting for an image
still being generated) and streams the bytes back, through
``EXPORT_PROXY_URL`` when set. Links work from any instance sharing the
store, need no API key (the token is the key), and never carry a secret.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from chat2api.api.bindings import NotFound
from chat2api.pool.lease import Lease
from chat2api.pool.pool import PoolLease
from chat2api.protocol.events import ImageGenerated
from chat2api.state import AppState
from chat2api.store.sealed import Sealer
from chat2api.upstream.chatgpt import Credentials
from chat2api.upstream.downloads import Generated

DOWNLOAD = "download"
DOWNLOAD_TTL = 7 * 86400.0


def _record_key(link: str) -> str:
    """Where a link's record lives: a hash of the link, which the store never sees."""
    return hashlib.sha256(link.encode()).hexdigest()


class DownloadLinks:
    """Makes download links for one answer (implements ``convert.generated.Links``).

    A client's own AccessToken is sealed in the record under a key derived
    from the link itself, and the record is stored under the link's hash:
    the store alone (its file, a backup, Redis) does not give the token away.
    """

    def __init__(self, state: AppState, base_url: str, lease: Lease) -> None:
        self._state = state
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
        await self._state.store.put_record(
            DOWNLOAD, _record_key(link), {**record, **account}, DOWNLOAD_TTL
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


async def download(request: Request) -> Response:
    """The bytes behind a download link of an answer."""
    state: AppState = request.app.state.chat2api
    link = request.path_params["token"]
    record = await state.store.get_record(DOWNLOAD, _record_key(link))
    if record is None:
        raise NotFound("This download link is unknown or has expired.", param="token")
    item = Generated(
        conversation_id=record.get("conversation_id"),
        message_id=record.get("message_id"),
        asset_pointer=record.get("asset_pointer"),
        sandbox_path=record.get("sandbox_path"),
        pending=bool(record.get("pending")),
    )
    lease: Lease | None = None
    if record.get("pool_account"):
        lease = await state.pool.acquire_account(record["pool_account"], "*")
        credentials = lease.credentials
    elif record.get("sealed"):
        own = orjson.loads(Sealer(link, purpose="download").open(str(record["sealed"])))
        credentials = Credentials(own.get("access_token"), own.get("workspace"))
    elif record.get("device"):
        credentials = Credentials(device=record["device"])
    else:
        credentials = Credentials()
    try:
        url = await state.downloader.download_url(credentials, item)
    finally:
        if lease is not None:
            await lease.release()
    content_type, body = await state.downloader.stream(url)
    return StreamingResponse(body, media_type=content_type or "application/octet-stream")


routes = [Route("/v1/files/download/{token}", download, methods=["GET"])]
