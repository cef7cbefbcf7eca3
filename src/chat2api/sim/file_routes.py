"""File endpoints (spec 1.7, 1.10) and the attachment check of conversation requests.

Upload: `POST /backend-api/files` → signed `upload_url` on the simulator →
`PUT` the bytes (201) → `POST /backend-api/files/{id}/uploaded`. Download is
two-hop everywhere: a JSON answer carrying `download_url` (a signed
`/_blob/<id>?sp=r` URL on the simulator), then a plain GET of the bytes.
Files belong to the owner that created them (token user + account); anyone
else gets 404 `file_not_found`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from chat2api.sim import faults
from chat2api.sim.common import headers_of, identify, owner_of, parse_json, sim_state
from chat2api.sim.files import (
    USE_CASES,
    FileRecord,
    attachments_of,
    blob_signature,
    blob_url,
    image_parts_of,
    new_file_id,
    pointer_file_id,
)
from chat2api.sim.history import Conversation
from chat2api.sim.state import SimState


def file_not_found(file_id: str) -> Response:
    """404 for a file that does not exist or belongs to someone else."""
    return faults.json_response(
        404, {"detail": {"code": "file_not_found", "message": f"File {file_id} not found."}}
    )


def file_not_uploaded(file_id: str) -> Response:
    """400 for a file whose bytes (or `/uploaded` confirmation) are missing."""
    return faults.json_response(
        400,
        {
            "detail": {
                "code": "file_not_uploaded",
                "message": f"File {file_id} has not been uploaded yet.",
            }
        },
    )


def file_not_ready(file_id: str) -> Response:
    """404 for a generated image whose task has not finished."""
    return faults.json_response(
        404,
        {"detail": {"code": "file_not_ready", "message": f"File {file_id} is not ready yet."}},
    )


def _bad(message: str) -> Response:
    return faults.json_response(400, {"detail": message})


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _owned(request: Request, file_id: str) -> FileRecord | Response:
    """The caller's file, or the auth error / 404 to answer."""
    who = identify(request)
    if isinstance(who, Response):
        return who
    record = sim_state(request).files.get(file_id)
    if record is None or record.owner != owner_of(who, headers_of(request)):
        return file_not_found(file_id)
    return record


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------- upload


async def create_file(request: Request) -> Response:
    """POST /backend-api/files — register a file, answer a signed upload URL."""
    state = sim_state(request)
    headers = headers_of(request)
    body = parse_json(await request.body())
    state.record(request.url.path, "POST", headers, body)
    who = identify(request)
    if isinstance(who, Response):
        return who
    if not isinstance(body, dict) or "_unparsed" in body:
        return _bad("expected a JSON object")
    name = body.get("file_name")
    size = body.get("file_size")
    use_case = body.get("use_case")
    width = body.get("width")
    height = body.get("height")
    if not isinstance(name, str) or not name:
        return _bad("file_name must be a non-empty string")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return _bad("file_size must be an integer >= 0")
    if size > state.config.max_upload_bytes:
        return faults.json_response(
            400, {"detail": {"code": "file_too_large", "message": "The file is too large."}}
        )
    if use_case not in USE_CASES:
        return _bad(f"use_case must be one of {sorted(USE_CASES)}")
    for dim in (width, height):
        if dim is not None and (not _is_int(dim) or dim <= 0):
            return _bad("width and height must be positive integers")
    record = FileRecord(
        file_id=new_file_id(),
        owner=owner_of(who, headers),
        file_name=name,
        file_size=size,
        use_case=use_case,
        width=width,
        height=height,
    )
    state.add_file(record)
    state.stats.files_created += 1
    return faults.json_response(
        200,
        {
            "status": "success",
            "upload_url": blob_url(_base_url(request), record.file_id, "cw"),
            "file_id": record.file_id,
        },
    )


def _signed(request: Request, file_id: str, permission: str) -> bool:
    query = request.query_params
    return query.get("sp") == permission and query.get("sig") == blob_signature(file_id, permission)


def _azure_error(status: int, code: str) -> Response:
    body = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code></Error>'
    return Response(body, status_code=status, media_type="application/xml")


async def blob_put(request: Request) -> Response:
    """PUT /_blob/{id}?sp=cw&sig=… — the bytes (no Authorization; BlockBlob; exact size) → 201."""
    state = sim_state(request)
    file_id = request.path_params["file_id"]
    data = await request.body()
    state.stats.blob_puts += 1
    record = state.files.get(file_id)
    if record is None or record.kind != "upload" or not _signed(request, file_id, "cw"):
        return _azure_error(403, "AuthenticationFailed")
    if request.headers.get("x-ms-blob-type") != "BlockBlob":
        return _azure_error(400, "MissingRequiredHeader")
    if len(data) != record.file_size:
        return _azure_error(400, "InvalidHeaderValue")
    record.put(data, request.headers.get("content-type"))
    return Response(b"", status_code=201)


async def blob_get(request: Request) -> Response:
    """GET /_blob/{id}?sp=r&sig=… — the bytes with their Content-Type."""
    state = sim_state(request)
    file_id = request.path_params["file_id"]
    state.stats.blob_gets += 1
    record = state.files.get(file_id)
    if record is None or not _signed(request, file_id, "r"):
        return _azure_error(403, "AuthenticationFailed")
    if record.data is None or not record.ready:
        return _azure_error(404, "BlobNotFound")
    return Response(record.data, media_type=record.mime_type or "application/octet-stream")


async def file_uploaded(request: Request) -> Response:
    """POST /backend-api/files/{id}/uploaded — confirm the upload (bytes must be there)."""
    record = _owned(request, request.path_params["file_id"])
    if isinstance(record, Response):
        return record
    if record.data is None:
        return file_not_uploaded(record.file_id)
    record.uploaded = True
    return faults.json_response(
        200,
        {
            "status": "success",
            "download_url": blob_url(_base_url(request), record.file_id, "r"),
            "metadata": {},
        },
    )


def retrieval_status(record: FileRecord, polls_needed: int) -> str:
    """`pending` until uploaded and, for `my_files`, until the N-th poll; then `success`."""
    if not record.uploaded:
        return "pending"
    if record.use_case != "my_files":
        return "success"
    record.retrieval_polls += 1
    return "success" if record.retrieval_polls >= polls_needed else "pending"


async def get_file(request: Request) -> Response:
    """GET /backend-api/files/{id} — the file's state (poll it for `retrieval_index_status`)."""
    record = _owned(request, request.path_params["file_id"])
    if isinstance(record, Response):
        return record
    status = retrieval_status(record, sim_state(request).config.retrieval_polls)
    tokens = len(record.data or b"") // 4 if status == "success" else None
    body = {
        "status": "success",
        "file_id": record.file_id,
        "file_name": record.file_name,
        "file_size": record.file_size,
        "mime_type": record.mime_type,
        "use_case": record.use_case,
        "width": record.width,
        "height": record.height,
        "upload_status": "uploaded" if record.uploaded else "pending",
        "retrieval_index_status": status,
        "file_size_tokens": tokens if record.use_case == "my_files" else None,
        "creation_time": record.created,
    }
    return faults.json_response(200, body)


def _download(request: Request, record: FileRecord) -> Response:
    if not record.ready:
        return file_not_ready(record.file_id)
    if not record.uploaded:
        return file_not_uploaded(record.file_id)
    return faults.json_response(
        200,
        {
            "status": "success",
            "download_url": blob_url(_base_url(request), record.file_id, "r"),
            "file_name": record.file_name,
            "metadata": {},
        },
    )


async def file_download(request: Request) -> Response:
    """GET /backend-api/files/{id}/download and /files/download/{id} — the signed download URL."""
    record = _owned(request, request.path_params["file_id"])
    if isinstance(record, Response):
        return record
    return _download(request, record)


async def attachment_download(request: Request) -> Response:
    """GET …/conversation/{cid}/attachment/{file_id}/download — sediment files (picture_v2)."""
    record = _owned(request, request.path_params["file_id"])
    if isinstance(record, Response):
        return record
    cid = request.path_params["cid"]
    if record.conversation_id is not None and record.conversation_id != cid:
        return file_not_found(record.file_id)
    answer = _download(request, record)
    if answer.status_code != 200:
        return answer
    url = blob_url(_base_url(request), record.file_id, "r")
    return faults.json_response(
        200, {"status": "success", "download_url": url, "file_name": record.file_name}
    )


async def interpreter_download(request: Request) -> Response:
    """GET …/conversation/{cid}/interpreter/download?message_id&sandbox_path — a sandbox file."""
    who = identify(request)
    if isinstance(who, Response):
        return who
    state = sim_state(request)
    key = (
        request.path_params["cid"],
        request.query_params.get("message_id", ""),
        request.query_params.get("sandbox_path", ""),
    )
    found = state.sandbox_outputs.get(key)
    if found is None or found.owner != owner_of(who, headers_of(request)):
        return faults.json_response(
            404,
            {"detail": {"code": "file_not_found", "message": "No such file in the sandbox."}},
        )
    record = state.files[found.file_id]
    return faults.json_response(
        200,
        {
            "status": "success",
            "download_url": blob_url(_base_url(request), record.file_id, "r"),
            "file_name": record.file_name,
        },
    )


async def admin_files(request: Request) -> Response:
    """GET /_sim/files — every file record (no bytes) and what conversations received."""
    state = sim_state(request)
    return faults.json_response(
        200,
        {
            "files": [f.as_json() for f in state.files.values()],
            "received": state.received,
            "last_attachments": state.last_attachments(),
            "last_image_parts": state.last_image_parts(),
        },
    )


# --------------------------------------------------------------------------- conversations


def check_attachments(state: SimState, messages: object, owner: str) -> Response | None:
    """Every attachment and image pointer of the request must name an uploaded file of `owner`.

    400 `invalid_attachment` for an entry without a string `id` (or a pointer
    that is not `file-service://` / `sediment://`), 404 `file_not_found` for an
    unknown file or another owner's, 400 `file_not_uploaded` when its bytes or
    the `/uploaded` confirmation are missing (or a generated image is not done).
    """
    ids: list[str] = []
    for message in messages if isinstance(messages, list) else []:
        for attachment in attachments_of(message):
            file_id = attachment.get("id") if isinstance(attachment, dict) else None
            if not isinstance(file_id, str) or not file_id:
                return _invalid_attachment("an attachment needs a string id")
            ids.append(file_id)
        for part in image_parts_of(message):
            file_id = pointer_file_id(part.get("asset_pointer"))
            if file_id is None:
                return _invalid_attachment("asset_pointer must be file-service:// or sediment://")
            ids.append(file_id)
    for file_id in ids:
        record = state.files.get(file_id)
        if record is None or record.owner != owner:
            return file_not_found(file_id)
        if not record.uploaded or not record.ready:
            return file_not_uploaded(file_id)
    return None


def _invalid_attachment(message: str) -> Response:
    return faults.json_response(400, {"detail": {"code": "invalid_attachment", "message": message}})


def record_received(state: SimState, conversation_id: str, messages: object) -> None:
    """Remember, per conversation, each request message that carried files."""
    for message in messages if isinstance(messages, list) else []:
        attachments = attachments_of(message)
        parts = image_parts_of(message)
        if attachments or parts:
            msg_id = message.get("id") if isinstance(message, dict) else None
            state.received.append(
                {
                    "conversation_id": conversation_id,
                    "message_id": msg_id,
                    "attachments": attachments,
                    "image_parts": parts,
                }
            )


def poll_image_tasks(state: SimState, conv: Conversation, now: float) -> None:
    """A GET of a conversation counts as one poll of each of its running picture_v2 tasks."""
    for task in state.image_tasks.values():
        if task.done or task.conversation_id != conv.id:
            continue
        task.polls += 1
        state.stats.image_polls += 1
        if task.polls < state.config.image_async_polls:
            continue
        task.done = True
        node = conv.nodes.get(task.message_id)
        if node is not None and node.message is not None:
            message: dict[str, Any] = dict(node.message)
            message.update(task.finished_message)
            message["update_time"] = now
            node.message = message
        record = state.files.get(task.file_id)
        if record is not None:
            record.ready = True
