"""Generated content: DALL·E images, picture_v2 async images, code interpreter, citations."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chat2api.sim import SimServer, mint_access_token
from chat2api.sim.generated import (
    CITE_MARKER,
    CITE_TITLE,
    CITE_URL,
    citations,
    cite_text,
    content_references,
    dalle_code,
    generated_png,
    image_gen_code,
    image_reply_text,
    image_request,
    png_size,
    sandbox_code,
    sandbox_csv,
    sandbox_output,
    sandbox_reply,
    supporting_site,
)
from chat2api.sim.replies import parse_directives

from .conftest import DEVICE, Client, Reply, apply_v1, sse_records
from .test_files import raw

BOTH = pytest.mark.parametrize("v1", [False, True], ids=["legacy", "v1"])


def final_messages(reply: Reply, v1: bool) -> list[dict[str, Any]]:
    """Every message of the stream in its last state, in stream order (v1 hidden root dropped)."""
    records = sse_records(reply.body)
    if v1:
        roots = apply_v1(records)
        return [r["message"] for _, r in sorted(roots.items()) if r.get("message")][1:]
    out: dict[str, dict[str, Any]] = {}
    for event, data in records:
        if event is None and data != "[DONE]":
            rec = json.loads(data)
            if rec.get("message"):
                out[rec["message"]["id"]] = rec["message"]
    return list(out.values())


def snapshots(reply: Reply) -> list[dict[str, Any]]:
    """The legacy message snapshots, in order."""
    out = []
    for event, data in sse_records(reply.body):
        if event is None and data != "[DONE]":
            rec = json.loads(data)
            if rec.get("message"):
                out.append(rec["message"])
    return out


def types(reply: Reply) -> list[str]:
    """`type` of each control record (and `[DONE]`)."""
    out = []
    for event, data in sse_records(reply.body):
        if data == "[DONE]":
            out.append(data)
        elif event is None and "type" in json.loads(data):
            out.append(json.loads(data)["type"])
    return out


def conversation_id(reply: Reply) -> str:
    """The conversation id the stream carries."""
    for event, data in sse_records(reply.body):
        if data != "[DONE]" and (event in (None, "delta")):
            found = json.loads(data)
            cid = found.get("conversation_id") or (found.get("v") or {}).get("conversation_id")
            if cid:
                return str(cid)
    raise AssertionError("no conversation id")


def download(client: Client, path: str, token: str | None = None) -> Reply:
    """The two-hop download: the JSON answer, then the bytes of its download_url."""
    first = client.request("GET", path, headers=client.auth(token))
    assert first.status == 200, first.body
    return raw(client, "GET", first.json()["download_url"])


def test_directive_parsing() -> None:
    """`#sim:<kind>` directives are recognised, removed, and the last one wins."""
    d = parse_directives("draw a fox #sim:image size=512x512 #sim:words=3")
    assert (d.kind, d.prompt, d.words) == ("image", "draw a fox  size=512x512", 3)
    assert parse_directives("x #sim:image_async").kind == "image_async"
    assert parse_directives("#sim:cite #sim:sandbox go").kind == "sandbox"
    assert parse_directives("#sim:imagery #sim:image=1").kind is None
    req = image_request("draw a fox size=1024x1536 now")
    assert (req.prompt, req.width, req.height, req.orientation) == (
        "draw a fox now", 1024, 1536, "portrait",
    )  # fmt: skip
    assert image_request("fox size=9x9").size == "1024x1024"
    assert png_size(generated_png("fox", 20, 10)) == (20, 10)
    assert generated_png("fox", 20, 10) == generated_png("fox", 20, 10)
    assert generated_png("fox", 20, 10) != generated_png("cat", 20, 10)


@BOTH
def test_dalle_image(client: Client, v1: bool) -> None:
    """#sim:image: code call to dalle.text2im, tool image pointer, short answer; bytes download."""
    reply = client.converse("a red fox size=512x768 #sim:image", v1=v1)
    assert reply.status == 200
    req = image_request("a red fox size=512x768")
    png = generated_png(req.prompt, 512, 768)
    user, code, tool, answer = final_messages(reply, v1)
    assert user["author"]["role"] == "user"
    assert code["author"] == {"role": "assistant", "name": None, "metadata": {}}
    assert (code["recipient"], code["status"], code["end_turn"]) == (
        "dalle.text2im", "finished_successfully", False,
    )  # fmt: skip
    assert code["content"] == {
        "content_type": "code",
        "language": "json",
        "response_format_name": None,
        "text": '{"prompt":"a red fox","size":"512x768","n":1}',
    }
    assert code["content"]["text"] == dalle_code(req)
    assert tool["author"] == {"role": "tool", "name": "dalle.text2im", "metadata": {}}
    assert (tool["recipient"], tool["status"], tool["end_turn"]) == (
        "all", "finished_successfully", None,
    )  # fmt: skip
    assert tool["content"]["content_type"] == "multimodal_text"
    (part,) = tool["content"]["parts"]
    assert part["content_type"] == "image_asset_pointer"
    assert part["asset_pointer"].startswith("file-service://file-")
    assert (part["size_bytes"], part["width"], part["height"]) == (len(png), 512, 768)
    assert part["metadata"]["dalle"]["prompt"] == "a red fox"
    assert part["metadata"]["dalle"]["serialization_title"] == "DALL-E generation metadata"
    assert answer["content"] == {"content_type": "text", "parts": [image_reply_text("a red fox")]}
    assert (answer["status"], answer["end_turn"], answer["channel"]) == (
        "finished_successfully", True, "final",
    )  # fmt: skip
    assert code["metadata"]["parent_id"] == user["id"]
    assert tool["metadata"]["parent_id"] == code["id"]
    assert answer["metadata"]["parent_id"] == tool["id"]
    file_id = part["asset_pointer"].removeprefix("file-service://")
    got = download(client, f"/backend-api/files/{file_id}/download")
    assert got.body == png and got.headers["content-type"] == "image/png"
    record = client.server.state.files[file_id]
    assert (record.kind, record.width, record.height, record.message_id) == (
        "dalle", 512, 768, tool["id"],
    )  # fmt: skip
    other = client.request(
        "GET", f"/backend-api/files/{file_id}/download", headers=client.auth(mint_access_token())
    )
    assert other.status == 404


def test_dalle_legacy_steps(client: Client) -> None:
    """Legacy: the code message grows snapshot by snapshot before it finishes."""
    reply = client.converse("a red fox #sim:image")
    snaps = snapshots(reply)
    code = [s for s in snaps if s["recipient"] == "dalle.text2im"]
    assert code[0]["status"] == "in_progress" and code[0]["content"]["text"] == ""
    texts = [s["content"]["text"] for s in code]
    assert texts == sorted(texts, key=len) and texts[-1] == dalle_code(image_request("a red fox"))
    assert [s["status"] for s in code][-2:] == ["in_progress", "finished_successfully"]
    assert types(reply) == ["title_generation", "[DONE]"]


def test_dalle_v1_ops(client: Client) -> None:
    """v1: the code text arrives as appends to /message/content/text, then a patch."""
    reply = client.converse("a red fox #sim:image", v1=True)
    deltas = [json.loads(d) for e, d in sse_records(reply.body) if e == "delta"]
    appends = [d for d in deltas if d.get("p") == "/message/content/text"]
    assert appends and appends[0]["o"] == "append"
    meta = [json.loads(d) for e, d in sse_records(reply.body) if e is None and d != "[DONE]"]
    ste = next(m for m in meta if m.get("type") == "server_ste_metadata")["metadata"]
    assert (ste["tool_invoked"], ste["tool_name"]) == (True, "dalle.text2im")


@BOTH
def test_image_async(client: Client, v1: bool) -> None:
    """#sim:image_async: the tool is in_progress at [DONE]; the 2nd GET shows it finished."""
    reply = client.converse("a blue whale #sim:image_async", v1=v1)
    assert reply.status == 200
    req = image_request("a blue whale")
    png = generated_png(req.prompt, 1024, 1024)
    _, code, tool = final_messages(reply, v1)
    assert (code["recipient"], code["content"]["text"]) == (
        "t2uay3k.sj1i4kz", image_gen_code(req, []),
    )  # fmt: skip
    assert tool["author"]["role"] == "tool" and tool["author"]["name"] == "t2uay3k.sj1i4kz"
    assert (tool["status"], tool["end_turn"]) == ("in_progress", None)
    assert tool["metadata"]["async_task_type"] == "image_gen"
    assert tool["metadata"]["image_gen_task_id"].startswith("task_")
    (part,) = tool["content"]["parts"]
    pointer = part["asset_pointer"]
    assert pointer.startswith("sediment://file_00000000") and len(pointer) == 11 + 13 + 24
    assert (part["size_bytes"], part["width"], part["height"]) == (len(png), 1024, 1024)
    assert part["metadata"]["generation"]["height"] == 512
    kinds = types(reply)
    assert kinds[-1] == "[DONE]"
    if v1:
        assert kinds[-4:] == [
            "server_ste_metadata", "message_stream_complete", "conversation_detail_metadata",
            "[DONE]",
        ]  # fmt: skip
        assert "last_token" not in reply.body.decode()
    else:
        heights = [
            s["content"]["parts"][0]["metadata"]["generation"]["height"]
            for s in snapshots(reply)
            if s["author"]["role"] == "tool"
        ]
        assert heights == [256, 512]
    cid = conversation_id(reply)
    file_id = pointer.removeprefix("sediment://")
    path = f"/backend-api/conversation/{cid}/attachment/{file_id}/download"
    early = client.request("GET", path, headers=client.auth())
    assert early.status == 404 and early.json()["detail"]["code"] == "file_not_ready"

    def polled() -> dict[str, Any]:
        got = client.request("GET", f"/backend-api/conversation/{cid}", headers=client.auth())
        assert got.status == 200
        return dict(got.json()["mapping"][tool["id"]]["message"])

    first = polled()
    assert first["status"] == "in_progress"
    second = polled()
    assert second["status"] == "finished_successfully"
    final_part = second["content"]["parts"][0]
    assert final_part["metadata"]["generation"]["height"] == 1024
    assert final_part["asset_pointer"] == pointer
    got = download(client, path)
    assert got.body == png and got.headers["content-type"] == "image/png"
    assert client.server.state.stats.image_polls == 2
    # A temporary chat is kept for polling, but not listed.
    listed = client.request("GET", "/backend-api/conversations", headers=client.auth()).json()
    assert listed["items"] == []
    wrong = client.request(
        "GET", f"/backend-api/conversation/other/attachment/{file_id}/download",
        headers=client.auth(),
    )  # fmt: skip
    assert wrong.status == 404


def test_picture_v2_hint_with_size(client: Client) -> None:
    """system_hints picture_v2 behaves like #sim:image_async and honours size=WxH."""
    client.server.state.config = client.server.state.config.patched({"image_async_polls": 0})
    reply = client.converse(
        "a castle size=1536x1024", v1=True, extra={"system_hints": ["picture_v2"]}
    )
    _, code, tool = final_messages(reply, True)
    part = tool["content"]["parts"][0]
    assert (part["width"], part["height"]) == (1536, 1024)
    assert part["metadata"]["generation"]["orientation"] == "landscape"
    assert json.loads(code["content"]["text"])["size"] == "1536x1024"
    cid = conversation_id(reply)
    got = client.request("GET", f"/backend-api/conversation/{cid}", headers=client.auth())
    assert got.json()["mapping"][tool["id"]]["message"]["status"] == "finished_successfully"
    file_id = part["asset_pointer"].removeprefix("sediment://")
    body = download(client, f"/backend-api/conversation/{cid}/attachment/{file_id}/download").body
    assert body == generated_png("a castle", 1536, 1024)
    assert png_size(body) == (1536, 1024)


def test_image_async_kept_conversation_listed(client: Client) -> None:
    """A non-temporary picture_v2 turn is listed and its tool node is current."""
    reply = client.converse(
        "a kite #sim:image_async", extra={"history_and_training_disabled": False}
    )
    cid = conversation_id(reply)
    listed = client.request("GET", "/backend-api/conversations", headers=client.auth()).json()
    assert [i["id"] for i in listed["items"]] == [cid]
    detail = client.request("GET", f"/backend-api/conversation/{cid}", headers=client.auth())
    tool = final_messages(reply, False)[-1]
    assert detail.json()["current_node"] == tool["id"]


def test_image_async_truncated_is_not_polled(client: Client) -> None:
    """A picture_v2 stream cut by a fault ends without [DONE] and registers no task."""
    reply = client.converse("a kite #sim:image_async #sim:fault=truncated")
    assert b"[DONE]" not in reply.body
    assert client.server.state.image_tasks == {}


@BOTH
def test_sandbox(client: Client, v1: bool) -> None:
    """#sim:sandbox: python code, execution_output, answer with a sandbox link; CSV download."""
    reply = client.converse("make a table #sim:sandbox", v1=v1)
    _, code, output, answer = final_messages(reply, v1)
    assert (code["recipient"], code["author"]["role"], code["end_turn"]) == (
        "python", "assistant", False,
    )  # fmt: skip
    assert code["content"] == {
        "content_type": "code",
        "language": "python",
        "response_format_name": None,
        "text": sandbox_code(),
    }
    assert output["author"] == {"role": "tool", "name": "python", "metadata": {}}
    assert output["content"] == {"content_type": "execution_output", "text": sandbox_output()}
    assert output["status"] == "finished_successfully"
    assert output["metadata"]["aggregate_result"]["status"] == "success"
    text = answer["content"]["parts"][0]
    assert text == sandbox_reply()
    assert "[data.csv](sandbox:/mnt/data/data.csv)" in text
    cid = conversation_id(reply)
    path = (
        f"/backend-api/conversation/{cid}/interpreter/download"
        f"?message_id={answer['id']}&sandbox_path=/mnt/data/data.csv"
    )
    got = download(client, path)
    assert got.body == sandbox_csv() == b"n,square\r\n1,1\r\n2,4\r\n3,9\r\n"
    assert got.headers["content-type"].startswith("text/csv")
    bad = path.replace(answer["id"], code["id"])
    assert client.request("GET", bad, headers=client.auth()).status == 404
    other = client.request("GET", path, headers=client.auth(mint_access_token()))
    assert other.status == 404


@BOTH
def test_cite(client: Client, v1: bool) -> None:
    """#sim:cite: private-use markers in the text, citations and content_references at the end."""
    reply = client.converse("who won #sim:cite", v1=v1)
    answer = final_messages(reply, v1)[-1]
    text = answer["content"]["parts"][0]
    assert text == cite_text("who won")
    assert CITE_MARKER in text and "\ue203" in text and "\ue204" in text
    meta = answer["metadata"]
    assert meta["citations"] == citations(text)
    assert meta["content_references"] == content_references(text)
    cite = meta["citations"][0]
    assert (cite["metadata"]["url"], cite["metadata"]["title"]) == (CITE_URL, CITE_TITLE)
    assert text[cite["start_ix"] : cite["end_ix"]] == CITE_MARKER
    ref = meta["content_references"][0]
    assert (ref["matched_text"], ref["items"][0]["url"], ref["items"][0]["title"]) == (
        CITE_MARKER, CITE_URL, CITE_TITLE,
    )  # fmt: skip
    assert meta["finish_details"]["type"] == "stop"


def test_cite_metadata_only_at_the_end(client: Client) -> None:
    """Legacy: in_progress snapshots carry empty citations; the final one carries them."""
    reply = client.converse("who won #sim:cite")
    answers = [s for s in snapshots(reply) if s["author"]["role"] == "assistant"]
    assert all(s["metadata"]["citations"] == [] for s in answers[:-1])
    assert answers[-1]["metadata"]["citations"]


@BOTH
def test_cite_sources(client: Client, sim: SimServer, v1: bool) -> None:
    """cite_sources > 1: the other sources are supporting websites of the one item."""
    sim.state.config = sim.state.config.patched({"cite_sources": 3})
    reply = client.converse("who won #sim:cite", v1=v1)
    meta = final_messages(reply, v1)[-1]["metadata"]
    (item,) = meta["content_references"][0]["items"]
    sites = item["supporting_websites"]
    assert sites == [supporting_site(1), supporting_site(2)]
    assert [s["url"] for s in sites] == [
        "https://www.example.org/sim/articles/source-4",
        "https://www.example.org/sim/articles/source-5",
    ]
    assert len(meta["citations"]) == 1  # the 2024 shape names the one page


def test_generated_turn_kept(client: Client) -> None:
    """A kept sandbox turn holds code, output and answer in a chain under the user message."""
    reply = client.converse("table #sim:sandbox", extra={"history_and_training_disabled": False})
    user, code, output, answer = final_messages(reply, False)
    cid = conversation_id(reply)
    mapping = client.request("GET", f"/backend-api/conversation/{cid}", headers=client.auth())
    nodes = mapping.json()["mapping"]
    assert nodes[code["id"]]["parent"] == user["id"]
    assert nodes[output["id"]]["parent"] == code["id"]
    assert nodes[answer["id"]]["parent"] == output["id"]
    assert nodes[answer["id"]]["message"]["content"]["parts"] == [sandbox_reply()]


def test_generated_leaves_script_and_skips_reasoning(client: Client) -> None:
    """A generated turn takes no queued script and streams no thoughts, even for o3."""
    client.server.state.script("scripted")
    reply = client.converse("who #sim:cite", model="o3")
    roles = [m["content"]["content_type"] for m in final_messages(reply, False)]
    assert roles == ["text", "text"]
    assert len(client.server.state.scripts) == 1


def test_reset_forgets_generated(client: Client) -> None:
    """POST /_sim/reset drops generated files, image tasks and sandbox outputs."""
    client.converse("a #sim:image_async")
    client.converse("b #sim:sandbox")
    state = client.server.state
    assert state.files and state.image_tasks and state.sandbox_outputs
    client.request("POST", "/_sim/reset", {})
    assert not (state.files or state.image_tasks or state.sandbox_outputs)


def test_anonymous_image_and_file_cap(client: Client) -> None:
    """Anonymous DALL·E images download via /backend-anon; max_files drops the oldest file."""
    reply = client.converse("a kite #sim:image", prefix="/backend-anon")
    tool = final_messages(reply, False)[2]
    file_id = tool["content"]["parts"][0]["asset_pointer"].removeprefix("file-service://")
    first = client.request(
        "GET", f"/backend-anon/files/{file_id}/download", headers={"OAI-Device-Id": DEVICE}
    )
    assert raw(client, "GET", first.json()["download_url"]).body == generated_png("a kite")
    client.server.state.config = client.server.state.config.patched({"max_files": 1})
    client.converse("b #sim:sandbox")
    assert list(client.server.state.files) != [file_id] and len(client.server.state.files) == 1
