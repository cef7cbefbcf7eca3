"""The route behind download links (``chat2api.links`` makes them).

Fetching a link resolves the upstream's signed URL as that account (waiting for an image
still being generated) and streams the bytes back, through
``EXPORT_PROXY_URL`` when set. Links work from any instance sharing the
store, need no API key (the token is the key), and never carry a secret.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from chat2api.api.bindings import NotFound
from chat2api.links import DOWNLOAD, record_key
from chat2api.pool.lease import Lease
from chat2api.state import AppState
from chat2api.store.sealed import Sealer
from chat2api.upstream.downloads import Generated
from chat2api.values import Credentials


async def download(request: Request) -> Response:
    """The bytes behind a download link of an answer."""
    state: AppState = request.app.state.chat2api
    link = request.path_params["token"]
    record = await state.store.get_record(DOWNLOAD, record_key(link))
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
