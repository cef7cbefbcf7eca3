"""Files of the simulator (spec 1.7, 1.10): uploads, generated images, sandbox outputs.

Every file, uploaded or generated, is a `FileRecord` in `SimState.files`
(keyed by id). Bytes live in memory. Blob URLs point at the simulator itself
(`/_blob/<id>?sp=cw|r&sig=…`, the stand-in for files.oaiusercontent.com); the
signature is an HMAC of the permission and file id with a per-process secret,
so only URLs the simulator handed out work.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
import os
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

from chat2api.sim.generated import png_size

USE_CASES = frozenset({"multimodal", "my_files", "ace_upload"})
ALNUM = string.ascii_letters + string.digits
_SECRET = os.urandom(32)


def new_file_id() -> str:
    """`file-` + 22 random alphanumerics (the 2023–24 `file-service://` id form)."""
    return "file-" + "".join(secrets.choice(ALNUM) for _ in range(22))


def new_sediment_id() -> str:
    """`file_00000000` + 24 random hex digits (the 2025+ `sediment://` id form)."""
    return "file_00000000" + secrets.token_hex(12)


def blob_signature(file_id: str, permission: str) -> str:
    """The `sig` of a blob URL for `file_id` with permission `cw` (upload) or `r` (download)."""
    mac = hmac.new(_SECRET, f"{permission}:{file_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:43]


def blob_url(base_url: str, file_id: str, permission: str) -> str:
    """A signed URL on the simulator for uploading (`cw`) or downloading (`r`) a file."""
    sig = blob_signature(file_id, permission)
    return (
        f"{base_url.rstrip('/')}/_blob/{file_id}"
        f"?se=2099-01-01T00%3A00%3A00Z&sp={permission}&sv=2020-04-08&sr=b&sig={sig}"
    )


def guess_mime(file_name: str) -> str:
    """A MIME type from the file name (`application/octet-stream` when unknown)."""
    guessed, _ = mimetypes.guess_type(file_name)
    return guessed or "application/octet-stream"


@dataclass(slots=True)
class FileRecord:
    """One file the simulator knows about.

    `kind`: `upload` (client upload), `dalle` (DALL·E tool output),
    `image_gen` (picture_v2 output, a sediment id), `sandbox` (code-interpreter
    output). `uploaded` turns True on `POST /files/{id}/uploaded` (generated
    files are born uploaded). `ready` is False only for a picture_v2 image whose
    task has not finished yet (its bytes are not downloadable then).
    `width`/`height`: as declared at creation, else read from PNG bytes.
    """

    file_id: str
    owner: str
    file_name: str
    file_size: int
    use_case: str
    kind: str = "upload"
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    data: bytes | None = None
    sha256: str | None = None
    uploaded: bool = False
    ready: bool = True
    retrieval_polls: int = 0
    conversation_id: str | None = None
    message_id: str | None = None
    created: float = field(default_factory=time.time)

    def put(self, data: bytes, content_type: str | None) -> None:
        """Store uploaded bytes (the blob PUT)."""
        self.data = data
        self.sha256 = hashlib.sha256(data).hexdigest()
        mime = (content_type or "").split(";")[0].strip().lower()
        if not mime or mime == "application/octet-stream":
            mime = guess_mime(self.file_name)
        self.mime_type = mime
        size = png_size(data)
        if size is not None and self.width is None and self.height is None:
            self.width, self.height = size

    def as_json(self) -> dict[str, Any]:
        """The record as tests and `GET /_sim/files` see it (no bytes)."""
        return {
            "file_id": self.file_id,
            "file_name": self.file_name,
            "file_size": self.file_size,
            "use_case": self.use_case,
            "kind": self.kind,
            "mime_type": self.mime_type,
            "width": self.width,
            "height": self.height,
            "sha256": self.sha256,
            "uploaded": self.uploaded,
            "ready": self.ready,
            "conversation_id": self.conversation_id,
            "message_id": self.message_id,
        }


def generated_file(
    *,
    file_id: str,
    owner: str,
    file_name: str,
    data: bytes,
    mime_type: str,
    kind: str,
    use_case: str,
    conversation_id: str,
    message_id: str | None,
    ready: bool = True,
) -> FileRecord:
    """A file the "model" produced: already uploaded, bytes known."""
    size = png_size(data)
    return FileRecord(
        file_id=file_id,
        owner=owner,
        file_name=file_name,
        file_size=len(data),
        use_case=use_case,
        kind=kind,
        mime_type=mime_type,
        width=size[0] if size else None,
        height=size[1] if size else None,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        uploaded=True,
        ready=ready,
        conversation_id=conversation_id,
        message_id=message_id,
    )


@dataclass(slots=True)
class ImageTask:
    """A picture_v2 generation still running after its stream ended (spec 1.10)."""

    conversation_id: str
    owner: str
    message_id: str
    file_id: str
    finished_message: dict[str, Any]
    polls: int = 0
    done: bool = False


@dataclass(frozen=True, slots=True)
class SandboxOutput:
    """A file the code interpreter wrote, downloadable via `interpreter/download`."""

    conversation_id: str
    owner: str
    message_id: str
    sandbox_path: str
    file_id: str


def attachments_of(message: object) -> list[Any]:
    """`metadata.attachments` of a request message, as sent (anything but a list reads as [])."""
    metadata = message.get("metadata") if isinstance(message, dict) else None
    found = metadata.get("attachments") if isinstance(metadata, dict) else None
    return list(found) if isinstance(found, list) else []


def image_parts_of(message: object) -> list[dict[str, Any]]:
    """The `image_asset_pointer` parts of a request message's content, as sent."""
    content = message.get("content") if isinstance(message, dict) else None
    parts = content.get("parts") if isinstance(content, dict) else None
    return [
        p
        for p in (parts if isinstance(parts, list) else [])
        if isinstance(p, dict) and p.get("content_type") == "image_asset_pointer"
    ]


def pointer_file_id(asset_pointer: object) -> str | None:
    """The file id of `file-service://<id>` or `sediment://<id>`, else None."""
    if not isinstance(asset_pointer, str):
        return None
    for scheme in ("file-service://", "sediment://"):
        if asset_pointer.startswith(scheme) and len(asset_pointer) > len(scheme):
            return asset_pointer[len(scheme) :]
    return None
