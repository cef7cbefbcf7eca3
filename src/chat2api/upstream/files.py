"""Uploading a client's images and files to the upstream (spec §1.7).

create (``POST /backend-api/files``) → ``PUT`` the bytes to the returned
blob URL (no Authorization; 201) → mark uploaded → for retrievable
documents, poll until the upstream has indexed them. The result is what a
message needs to reference the file (§4.4).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from chat2api.errors import InvalidRequest, UpstreamError, UpstreamUnavailable
from chat2api.upstream.browser import fetch_headers
from chat2api.upstream.chatgpt import ChatGPTBackend, Target
from chat2api.upstream.errors import error_from_response
from chat2api.upstream.http import map_transport_errors
from chat2api.values import IMAGE_TYPES, Attachment, Credentials

RETRIEVAL_TYPES = frozenset(
    {
        "application/pdf",
        "text/plain",
        "text/markdown",
        "application/json",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    }
)
POLL_ATTEMPTS = 30
POLL_DELAY = 0.5


class UploadRefused(InvalidRequest):
    """The upstream refused one of the request's files; ``param`` names the part."""

    default_code = "upload_refused"


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file the upstream holds for this account."""

    file_id: str
    attachment: Attachment
    use_case: str

    def pointer(self) -> dict[str, Any]:
        """The ``image_asset_pointer`` part of a multimodal message (images only)."""
        a = self.attachment
        part: dict[str, Any] = {
            "content_type": "image_asset_pointer",
            "asset_pointer": f"file-service://{self.file_id}",
            "size_bytes": len(a.data),
        }
        if a.width and a.height:
            part["width"], part["height"] = a.width, a.height
        return part

    def metadata(self) -> dict[str, Any]:
        """The ``metadata.attachments`` entry."""
        a = self.attachment
        entry: dict[str, Any] = {
            "id": self.file_id,
            "name": a.name,
            "size": len(a.data),
            "mimeType": a.mime_type,
        }
        if a.width and a.height:
            entry["width"], entry["height"] = a.width, a.height
        return entry


def use_case(mime_type: str) -> str:
    """``multimodal`` for images, ``my_files`` for retrievable documents, else ``ace_upload``."""
    if mime_type in IMAGE_TYPES:
        return "multimodal"
    if mime_type in RETRIEVAL_TYPES or mime_type.startswith("text/"):
        return "my_files"
    return "ace_upload"


class FileUploader:
    """Uploads through the backend's pooled sessions, for one account at a time."""

    def __init__(self, backend: ChatGPTBackend, *, poll_delay: float = POLL_DELAY) -> None:
        self._backend = backend
        self._poll_delay = poll_delay

    async def upload(self, credentials: Credentials, attachment: Attachment) -> UploadedFile:
        """Upload one attachment; ``UploadRefused`` (400, naming its part) when refused."""
        if credentials.anonymous:
            raise InvalidRequest(
                "Images and files need an account: the login-free flow cannot upload.",
                param=attachment.param,
                code="upload_needs_account",
            )
        target = self._backend.next_target(credentials)
        kind = use_case(attachment.mime_type)
        body: dict[str, Any] = {
            "file_name": attachment.name,
            "file_size": len(attachment.data),
            "use_case": kind,
            "timezone_offset_min": -480,
            "reset_rate_limits": False,
        }
        if attachment.width and attachment.height:
            body["width"], body["height"] = attachment.width, attachment.height
        try:
            created = await self._json(target, credentials, "POST", "/backend-api/files", body)
            file_id, upload_url = str(created["file_id"]), str(created["upload_url"])
            await self._put(target, credentials, upload_url, attachment)
            await self._json(
                target, credentials, "POST", f"/backend-api/files/{file_id}/uploaded", {}
            )
            if kind == "my_files":
                await self._wait_indexed(target, credentials, file_id)
        except (KeyError, TypeError) as exc:
            raise UpstreamUnavailable("The upstream's file answer was unreadable.") from exc
        except UpstreamError as exc:
            if 400 <= exc.status_code < 500 and exc.status_code not in (401, 429):
                raise UploadRefused(
                    f"The upstream refused the file: {exc.message}", param=attachment.param
                ) from exc
            raise
        return UploadedFile(file_id, attachment, kind)

    async def _json(
        self, target: Target, credentials: Credentials, method: str, path: str, body: Any
    ) -> dict[str, Any]:
        return await self._backend.request_json(
            target, method, path, credentials=credentials, body=body, what="file upload"
        )

    async def _put(
        self, target: Target, credentials: Credentials, url: str, attachment: Attachment
    ) -> None:
        session = self._backend.session(target)
        headers = {
            **fetch_headers(self._backend.user_agent_for(credentials), site="cross-site"),
            "Content-Type": attachment.mime_type,
            "x-ms-blob-type": "BlockBlob",
            "x-ms-version": "2020-04-08",
        }
        with map_transport_errors("uploading a file"):
            response, content = await session.fetch(
                "PUT", url, data=attachment.data, headers=headers, timeout=self._backend.timeout
            )
        if response.status_code not in (200, 201):
            raise error_from_response(
                response.status_code,
                response.headers.lower(),
                content,
                what="file upload",
            )

    async def _wait_indexed(self, target: Target, credentials: Credentials, file_id: str) -> None:
        for _ in range(POLL_ATTEMPTS):
            info = await self._json(
                target, credentials, "GET", f"/backend-api/files/{file_id}", None
            )
            status = info.get("retrieval_index_status")
            if status == "success":
                return
            if status in ("failed", "error"):
                raise UpstreamUnavailable("The upstream could not process the file.")
            await asyncio.sleep(self._poll_delay)
        raise UpstreamUnavailable("The upstream did not finish processing the file in time.")
