"""Fetching what the upstream generated: images and code-interpreter files (spec §1.7, §1.10).

Every download is two hops: a JSON call (as the account) that returns a
signed ``download_url``, then a GET of the bytes. An image still being
generated when its answer ended (``pending``) is first waited for by
polling the conversation until its tool message has finished. The bytes are
fetched through ``EXPORT_PROXY_URL`` when set.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from chat2api.errors import InvalidRequest, UpstreamError, UpstreamUnavailable
from chat2api.upstream.browser import fetch_headers
from chat2api.upstream.chatgpt import ChatGPTBackend
from chat2api.upstream.errors import error_from_response
from chat2api.upstream.http import SessionPool, iter_body, map_transport_errors, open_stream
from chat2api.values import Credentials

POLL_DELAY = 1.0
POLL_LIMIT = 120  # an image generation that takes longer than this many polls is given up


class DownloadPending(UpstreamUnavailable):
    """The generated file is not ready (yet)."""

    status_code = 503
    default_code = "download_not_ready"


@dataclass(frozen=True, slots=True)
class Generated:
    """What to download: an asset pointer, or a sandbox path of a conversation."""

    conversation_id: str | None
    message_id: str | None = None
    asset_pointer: str | None = None  # file-service://… or sediment://…
    sandbox_path: str | None = None
    pending: bool = False


def _file_id(pointer: str) -> str:
    return pointer.split("://", 1)[1] if "://" in pointer else pointer


def needs_account() -> InvalidRequest:
    """The 400 for generated content asked for without an account (spec §8.3)."""
    return InvalidRequest(
        "Image generation and generated files need a ChatGPT account: "
        "the login-free flow has none.",
        code="needs_account",
    )


class Downloader:
    """Resolves generated content to bytes, as the account that produced it."""

    def __init__(
        self,
        backend: ChatGPTBackend,
        sessions: SessionPool,
        export_proxy: str | None = None,
        *,
        poll_delay: float = POLL_DELAY,
    ) -> None:
        self._backend = backend
        self._sessions = sessions
        self._proxy = export_proxy
        self._poll_delay = poll_delay

    async def download_url(self, credentials: Credentials, item: Generated) -> str:
        """The signed URL of the bytes (waits for a pending image)."""
        if credentials.anonymous:
            raise needs_account()
        target = self._backend.next_target(credentials)
        pointer = item.asset_pointer or ""
        if item.sandbox_path is None and (item.pending or not pointer):
            pointer = await self._wait_for_image(credentials, item)
        if item.sandbox_path is not None:
            path = (
                f"/backend-api/conversation/{item.conversation_id}/interpreter/download"
                f"?message_id={quote(item.message_id or '')}"
                f"&sandbox_path={quote(item.sandbox_path)}"
            )
        elif pointer.startswith("sediment://"):
            path = (
                f"/backend-api/conversation/{item.conversation_id}"
                f"/attachment/{_file_id(pointer)}/download"
            )
        else:
            path = f"/backend-api/files/{_file_id(pointer)}/download"
        data = await self._backend.request_json(
            target, "GET", path, credentials=credentials, what="file download"
        )
        url = data.get("download_url")
        if not isinstance(url, str) or not url:
            raise DownloadPending("The upstream has no download for this file (yet).")
        return url

    async def _wait_for_image(self, credentials: Credentials, item: Generated) -> str:
        """Poll the conversation until the image message finished; its pointer."""
        target = self._backend.next_target(credentials)
        for _ in range(POLL_LIMIT):
            conversation = await self._backend.request_json(
                target,
                "GET",
                f"/backend-api/conversation/{item.conversation_id}",
                credentials=credentials,
                what="image generation status",
            )
            pointer = _finished_pointer(conversation, item.message_id)
            if pointer:
                return pointer
            await asyncio.sleep(self._poll_delay)
        raise DownloadPending("The image is still being generated; try the link again later.")

    async def stream(self, url: str) -> tuple[str | None, AsyncIterator[bytes]]:
        """Content type and body of a signed download URL."""
        parts = urlsplit(url)
        session = self._sessions.session(f"{parts.scheme}://{parts.netloc}", self._proxy)
        response = await open_stream(
            session,
            url,
            data=None,
            headers=fetch_headers(self._backend.user_agent, site="cross-site"),
            idle_timeout=self._sessions.stream_timeout,
            method="GET",
        )
        if response.status_code != 200:
            with map_transport_errors("downloading a file"):
                content = await response.aread()
            raise error_from_response(
                response.status_code,
                response.headers.lower(),
                content,
                what="file download",
            )
        return response.headers.get("content-type"), iter_body(response)


def _finished_pointer(conversation: dict[str, Any], message_id: str | None) -> str | None:
    mapping = conversation.get("mapping")
    if not isinstance(mapping, dict):
        return None
    for node in mapping.values():
        message = node.get("message") if isinstance(node, dict) else None
        if not isinstance(message, dict):
            continue
        if message_id and message.get("id") != message_id:
            continue
        if message.get("status") != "finished_successfully":
            continue
        content = message.get("content") or {}
        for part in content.get("parts") or []:
            if isinstance(part, dict) and part.get("content_type") == "image_asset_pointer":
                pointer = part.get("asset_pointer")
                if isinstance(pointer, str) and pointer:
                    return pointer
    return None


__all__ = ["DownloadPending", "Downloader", "Generated", "UpstreamError"]
