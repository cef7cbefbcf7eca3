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

import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from chat2api.api.bindings import NotFound
from chat2api.pool.lease import Lease
from chat2api.pool.pool import PoolLease
from chat2api.protocol.events import ImageGenerated
from chat2api.state import AppState
from chat2api.upstream.chatgpt import Credentials
from chat2api.upstream.downloads import Generated

DOWNLOAD = "download"
DOWNLOAD_TTL = 7 * 86400.0


class DownloadLinks:
    """Makes download links for one answer (implements ``convert.generated.Links``)."""

    def __init__(self, state: AppState, base_url: str, lease: Lease) -> None:
        self._state = state
        self._base = base_url.rstrip("/")
        credentials = lease.credentials
        self._account: dict[str, Any] = (
            {"pool_account": lease.key}
            if isinstance(lease, PoolLease)
            else {
                "access_token": credentials.access_token,
                "workspace": credentials.account_id,
                "device": credentials.device if credentials.anonymous else None,
            }
        )

    async def _link(self, record: dict[str, Any]) -> str:
        token = secrets.token_urlsafe(24)
        await self._state.store.put_record(
            DOWNLOAD, token, {**record, **self._account}, DOWNLOAD_TTL
        )
        return f"{self._base}/v1/files/download/{token}"

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
    token = request.path_params["token"]
    record = await state.store.get_record(DOWNLOAD, token)
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
    else:
        credentials = Credentials(record.get("access_token"), record.get("workspace"))
        if record.get("device"):
            credentials = Credentials(device=record["device"])
    try:
        url = await state.downloader.download_url(credentials, item)
    finally:
        if lease is not None:
            await lease.release()
    content_type, body = await state.downloader.stream(url)
    return StreamingResponse(body, media_type=content_type or "application/octet-stream")


routes = [Route("/v1/files/download/{token}", download, methods=["GET"])]
