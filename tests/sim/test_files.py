"""Files: upload flow, blob PUT/GET, ownership, retrieval polling, downloads, attachments."""

from __future__ import annotations

import hashlib
import http.client
import json
import urllib.parse
import uuid
from typing import Any

from chat2api.sim import SimConfig, mint_access_token
from chat2api.sim.generated import generated_png, png_size

from .conftest import Client, Reply, sse_records

PNG = generated_png("upload test", 40, 30)


def raw(
    client: Client, method: str, url: str, data: bytes = b"", headers: dict[str, str] | None = None
) -> Reply:
    """One request to a full URL on the simulator, raw bytes, no Authorization unless given."""
    parts = urllib.parse.urlsplit(url)
    assert (parts.hostname, parts.port) == (client.server.host, client.server.port)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    target = parts.path + ("?" + parts.query if parts.query else "")
    conn.request(method, target, body=data if method == "PUT" else None, headers=headers or {})
    resp = conn.getresponse()
    out = Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    conn.close()
    return out


def create(
    client: Client,
    name: str,
    size: int,
    use_case: str = "multimodal",
    token: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """POST /backend-api/files; the answer's JSON (asserts 200)."""
    body = {"file_name": name, "file_size": size, "use_case": use_case, **extra}
    body["timezone_offset_min"] = -480
    reply = client.request("POST", "/backend-api/files", body, client.auth(token))
    assert reply.status == 200, reply.body
    return dict(reply.json())


def put(client: Client, url: str, data: bytes, mime: str = "image/png") -> Reply:
    """The blob PUT, with the headers of spec 1.7."""
    headers = {"x-ms-blob-type": "BlockBlob", "x-ms-version": "2020-04-08", "Content-Type": mime}
    return raw(client, "PUT", url, data, headers)


def upload(
    client: Client,
    name: str,
    data: bytes,
    mime: str,
    use_case: str = "multimodal",
    token: str | None = None,
    **extra: Any,
) -> str:
    """The whole upload: create, PUT, uploaded; returns the file id."""
    made = create(client, name, len(data), use_case, token, **extra)
    assert put(client, made["upload_url"], data, mime).status == 201
    done = client.request(
        "POST", f"/backend-api/files/{made['file_id']}/uploaded", {}, client.auth(token)
    )
    assert done.status == 200, done.body
    return str(made["file_id"])


def image_message(file_id: str, text: str, mime_key: str = "mimeType") -> dict[str, Any]:
    """A spec 4.4 multimodal user message with one image."""
    pointer = {
        "content_type": "image_asset_pointer",
        "asset_pointer": f"file-service://{file_id}",
        "size_bytes": len(PNG),
        "width": 40,
        "height": 30,
    }
    attachment = {
        "id": file_id,
        "name": "photo.png",
        mime_key: "image/png",
        "size": len(PNG),
        "width": 40,
        "height": 30,
    }
    return {
        "id": str(uuid.uuid4()),
        "author": {"role": "user"},
        "content": {"content_type": "multimodal_text", "parts": [pointer, text]},
        "metadata": {"attachments": [attachment]},
    }


def send(client: Client, messages: list[dict[str, Any]], token: str | None = None) -> Reply:
    """A conversation POST carrying exactly `messages`."""
    return client.converse("", token=token, extra={"messages": messages})


def test_create_answer_shape(client: Client) -> None:
    """POST /files answers status, a signed upload URL on the sim, and a file-<22 alnum> id."""
    made = create(client, "a.png", len(PNG), width=40, height=30)
    assert set(made) == {"status", "upload_url", "file_id"}
    assert made["status"] == "success"
    fid = made["file_id"]
    assert fid.startswith("file-") and len(fid) == 27 and fid[5:].isalnum()
    url = urllib.parse.urlsplit(made["upload_url"])
    assert (url.hostname, url.port, url.path) == (
        client.server.host,
        client.server.port,
        f"/_blob/{fid}",
    )
    query = urllib.parse.parse_qs(url.query)
    assert query["sp"] == ["cw"] and query["sig"][0]
    record = client.server.state.files[fid]
    assert (record.file_name, record.file_size, record.use_case) == (
        "a.png",
        len(PNG),
        "multimodal",
    )
    assert (record.width, record.height, record.uploaded) == (40, 30, False)


def test_create_rejects_bad_bodies(client: Client) -> None:
    """Bad names, sizes, use cases and dimensions are 400; no bearer is 401."""
    bad = [
        {"file_name": "", "file_size": 3, "use_case": "multimodal"},
        {"file_name": "a", "file_size": -1, "use_case": "multimodal"},
        {"file_name": "a", "file_size": "3", "use_case": "multimodal"},
        {"file_name": "a", "file_size": 3, "use_case": "other"},
        {"file_name": "a", "file_size": 3, "use_case": "multimodal", "width": 0},
    ]
    for body in bad:
        assert client.request("POST", "/backend-api/files", body, client.auth()).status == 400
    client.server.state.config = client.server.state.config.patched({"max_upload_bytes": 2})
    body = {"file_name": "a", "file_size": 3, "use_case": "multimodal"}
    too_big = client.request("POST", "/backend-api/files", body, client.auth())
    assert too_big.status == 400 and too_big.json()["detail"]["code"] == "file_too_large"
    assert client.request("POST", "/backend-api/files", body).status == 401


def test_upload_flow_and_download_bytes(client: Client) -> None:
    """PUT is 201 without Authorization; uploaded gives a download URL serving the bytes."""
    made = create(client, "a.png", len(PNG), width=40, height=30)
    fid = made["file_id"]
    assert put(client, made["upload_url"], PNG).status == 201
    done = client.request("POST", f"/backend-api/files/{fid}/uploaded", {}, client.auth())
    assert done.status == 200
    assert done.json()["status"] == "success"
    got = raw(client, "GET", done.json()["download_url"])
    assert got.status == 200 and got.body == PNG
    assert got.headers["content-type"] == "image/png"
    dl = client.request("GET", f"/backend-api/files/{fid}/download", headers=client.auth())
    assert dl.status == 200
    assert dl.json()["status"] == "success" and dl.json()["file_name"] == "a.png"
    assert raw(client, "GET", dl.json()["download_url"]).body == PNG
    alt = client.request("GET", f"/backend-api/files/download/{fid}", headers=client.auth())
    assert raw(client, "GET", alt.json()["download_url"]).body == PNG
    record = client.server.state.files[fid]
    assert record.sha256 == hashlib.sha256(PNG).hexdigest()
    assert (record.mime_type, record.uploaded, png_size(PNG)) == ("image/png", True, (40, 30))


def test_put_checks(client: Client) -> None:
    """Size mismatch and a missing BlockBlob header are 400, a bad signature 403."""
    made = create(client, "a.txt", 5, "my_files")
    url = made["upload_url"]
    assert put(client, url, b"1234", "text/plain").status == 400
    assert put(client, url, b"123456", "text/plain").status == 400
    assert raw(client, "PUT", url, b"12345", {"Content-Type": "text/plain"}).status == 400
    assert put(client, url.replace("sig=", "sig=x"), b"12345", "text/plain").status == 403
    assert put(client, url.replace("sp=cw", "sp=r"), b"12345", "text/plain").status == 403
    assert client.server.state.files[made["file_id"]].data is None
    assert put(client, url, b"12345", "text/plain; charset=utf-8").status == 201
    assert client.server.state.files[made["file_id"]].mime_type == "text/plain"


def test_uploaded_before_put_and_download_before_uploaded(client: Client) -> None:
    """`/uploaded` without bytes, and download before `/uploaded`, are 400 file_not_uploaded."""
    made = create(client, "a.png", len(PNG))
    fid = made["file_id"]
    early = client.request("POST", f"/backend-api/files/{fid}/uploaded", {}, client.auth())
    assert early.status == 400 and early.json()["detail"]["code"] == "file_not_uploaded"
    assert put(client, made["upload_url"], PNG).status == 201
    dl = client.request("GET", f"/backend-api/files/{fid}/download", headers=client.auth())
    assert dl.status == 400 and dl.json()["detail"]["code"] == "file_not_uploaded"


def test_mime_guessed_from_name(client: Client) -> None:
    """Without a useful Content-Type the MIME type comes from the file name."""
    fid = upload(client, "table.csv", b"a,b\n", "application/octet-stream", "ace_upload")
    assert client.server.state.files[fid].mime_type == "text/csv"


def test_ownership(client: Client) -> None:
    """Another account's token gets 404 on every file endpoint and in attachments."""
    fid = upload(client, "a.png", PNG, "image/png")
    other = mint_access_token()
    for method, path in [
        ("GET", f"/backend-api/files/{fid}"),
        ("GET", f"/backend-api/files/{fid}/download"),
        ("POST", f"/backend-api/files/{fid}/uploaded"),
    ]:
        reply = client.request(method, path, {} if method == "POST" else None, client.auth(other))
        assert reply.status == 404, path
        assert reply.json()["detail"]["code"] == "file_not_found"
    refused = send(client, [image_message(fid, "what is it?")], token=other)
    assert refused.status == 404 and refused.json()["detail"]["code"] == "file_not_found"
    assert send(client, [image_message(fid, "what is it?")]).status == 200


def test_retrieval_polling(client: Client) -> None:
    """my_files: pending until uploaded, then success on the retrieval_polls-th GET."""
    client.server.state.config = client.server.state.config.patched({"retrieval_polls": 3})
    made = create(client, "notes.md", 6, "my_files")
    fid = made["file_id"]
    path = f"/backend-api/files/{fid}"

    def status() -> str:
        return str(
            client.request("GET", path, headers=client.auth()).json()["retrieval_index_status"]
        )

    assert status() == "pending"
    assert put(client, made["upload_url"], b"# hi\n\n", "text/markdown").status == 201
    assert status() == "pending"
    client.request("POST", f"{path}/uploaded", {}, client.auth())
    assert [status(), status(), status()] == ["pending", "pending", "success"]
    final = client.request("GET", path, headers=client.auth()).json()
    assert final["file_size_tokens"] == 1 and final["upload_status"] == "uploaded"
    assert final["file_name"] == "notes.md" and final["use_case"] == "my_files"


def test_retrieval_default_and_images(client: Client) -> None:
    """Default retrieval_polls=1: the first poll succeeds; images are success once uploaded."""
    doc = upload(client, "n.txt", b"hello", "text/plain", "my_files")
    img = upload(client, "a.png", PNG, "image/png")
    for fid in (doc, img):
        got = client.request("GET", f"/backend-api/files/{fid}", headers=client.auth()).json()
        assert got["retrieval_index_status"] == "success"


def test_attachments_recorded(client: Client) -> None:
    """Accepted attachments and image parts are kept as sent (last request, per conversation)."""
    fid = upload(client, "photo.png", PNG, "image/png", width=40, height=30)
    doc = upload(client, "notes.txt", b"some notes", "text/plain", "my_files")
    message = image_message(fid, "describe")
    message["metadata"]["attachments"].append(
        {"id": doc, "name": "notes.txt", "mime_type": "text/plain", "size": 10}
    )
    reply = send(client, [message])
    assert reply.status == 200
    state = client.server.state
    assert state.last_attachments() == message["metadata"]["attachments"]
    assert state.last_image_parts() == [message["content"]["parts"][0]]
    cid = json.loads(sse_records(reply.body)[0][1])["conversation_id"]
    assert state.attachments_for(cid) == [
        {
            "conversation_id": cid,
            "message_id": message["id"],
            "attachments": message["metadata"]["attachments"],
            "image_parts": [message["content"]["parts"][0]],
        }
    ]
    record = state.files[fid]
    assert (record.width, record.height, record.file_size, record.mime_type) == (
        40, 30, len(PNG), "image/png",
    )  # fmt: skip
    assert state.last_prompt() == [("user", "describe")]
    listed = client.request("GET", "/_sim/files").json()
    assert {f["file_id"] for f in listed["files"]} == {fid, doc}
    assert listed["last_attachments"] == message["metadata"]["attachments"]


def test_attachment_refusals(client: Client) -> None:
    """Unknown files 404, not-uploaded 400, malformed entries 400; nothing is recorded."""
    made = create(client, "a.png", len(PNG))
    assert put(client, made["upload_url"], PNG).status == 201  # but no /uploaded
    missing = send(client, [image_message("file-" + "x" * 22, "hi")])
    assert missing.status == 404 and missing.json()["detail"]["code"] == "file_not_found"
    pending = send(client, [image_message(made["file_id"], "hi")])
    assert pending.status == 400 and pending.json()["detail"]["code"] == "file_not_uploaded"
    bad = image_message(made["file_id"], "hi")
    bad["metadata"]["attachments"] = [{"name": "x"}]
    bad["content"]["parts"] = ["hi"]
    refused = send(client, [bad])
    assert refused.status == 400 and refused.json()["detail"]["code"] == "invalid_attachment"
    bad = image_message(made["file_id"], "hi")
    bad["metadata"] = {}
    bad["content"]["parts"][0]["asset_pointer"] = "https://example.com/x.png"
    assert send(client, [bad]).status == 400
    assert client.server.state.received == []


def test_reset_forgets_files(client: Client) -> None:
    """POST /_sim/reset drops files and received attachments."""
    fid = upload(client, "a.png", PNG, "image/png")
    assert send(client, [image_message(fid, "hi")]).status == 200
    client.request("POST", "/_sim/reset", {})
    state = client.server.state
    assert state.files == {} and state.received == [] and state.last_attachments() == []
    gone = client.request("GET", f"/backend-api/files/{fid}", headers=client.auth())
    assert gone.status == 404


def test_config_knobs_listed(client: Client) -> None:
    """The new knobs are in GET /_sim/config and type-checked."""
    cfg = client.request("GET", "/_sim/config").json()
    assert (cfg["retrieval_polls"], cfg["image_async_polls"]) == (1, 2)
    assert client.request("POST", "/_sim/config", {"image_async_polls": -1}).status == 400
    assert SimConfig().max_upload_bytes == 64 * 1024 * 1024
