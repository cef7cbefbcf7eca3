"""E3 turns: streams cut on purpose, `f/conversation/resume` by offset, stop and stream_status."""

from __future__ import annotations

import http.client
import json
import threading
import time
from typing import Any

import pytest

from chat2api.sim import mint_access_token, reply_text

from .conftest import DELTA_ENCODING, Client, Reply, conversation_body, e3_body, v1_answer

SEND = "/backend-api/f/conversation"
RESUME = "/backend-api/f/conversation/resume"
STOP = "/backend-api/stop_conversation"


def _stream(client: Client, path: str, body: object, headers: dict[str, str]) -> Reply:
    """POST and read until the server ends or breaks the stream (a reset is not an error here)."""
    conn = http.client.HTTPConnection(client.server.host, client.server.port, timeout=10)
    hdrs = {"Content-Type": "application/json", **headers}
    conn.request("POST", path, body=json.dumps(body).encode(), headers=hdrs)
    resp = conn.getresponse()
    raw = b""
    try:
        while chunk := resp.read1(65536):
            raw += chunk
    except (ConnectionResetError, http.client.IncompleteRead):
        pass  # the cut this test asked for
    conn.close()
    return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, raw)


def records(raw: bytes) -> list[bytes]:
    """Complete SSE events of a body (a partly received last one is not consumed)."""
    blocks = raw.split(b"\n\n")[:-1]  # the last piece is "" or an unfinished event
    return [b + b"\n\n" for b in blocks]


def turn_records(raw: bytes, offset: int) -> list[bytes]:
    """The turn's records in a body resumed at `offset`: a re-sent `delta_encoding` left out."""
    got = records(raw)
    return got[1:] if offset > 0 and got[:1] == [DELTA_ENCODING] else got


def _conversation_id(client: Client, got: list[bytes]) -> str:
    for record in got:
        if record.startswith(b"data: {"):
            cid: str = json.loads(record[len(b"data: ") :])["conversation_id"]
            return cid
    # Broken before any record naming it: only the simulator knows the id.
    return next(reversed(client.server.state.turns.turns.values())).conversation_id


def _send(client: Client, text: str, **extra: Any) -> tuple[Reply, dict[str, str], str]:
    """One E3 send; the reply, its headers and its conversation id."""
    hdrs = client.e3_headers()
    reply = _stream(client, SEND, e3_body(text, extra or None), hdrs)
    assert reply.status == 200, reply.body
    return reply, hdrs, _conversation_id(client, records(reply.body))


def _resume(client: Client, cid: str, offset: int, conduit: str, token: str | None = None) -> Reply:
    hdrs = dict(client.auth(token), **{"X-Conduit-Token": conduit})
    return _stream(client, RESUME, {"conversation_id": cid, "offset": offset}, hdrs)


def _patch(client: Client, **knobs: Any) -> None:
    client.server.state.config = client.server.state.config.patched(knobs)


def test_uncut_turn_can_be_replayed_from_any_offset(client: Client) -> None:
    """A finished turn resumed at k re-sends exactly its records k… (after a header copy)."""
    reply, hdrs, cid = _send(client, "say exactly: one two three four")
    whole = records(reply.body)
    assert whole[0] == DELTA_ENCODING  # record 0 of the turn
    assert _resume(client, cid, 0, hdrs["X-Conduit-Token"]).body == reply.body
    for k in (1, 2, len(whole) - 1, len(whole)):
        again = _resume(client, cid, k, hdrs["X-Conduit-Token"])
        assert again.status == 200
        assert again.body == DELTA_ENCODING + b"".join(whole[k:])
        assert turn_records(again.body, k) == whole[k:]
    assert client.server.state.stats.resumes == 5


@pytest.mark.parametrize("fault", ["truncated_resumable", "cut_resumable"])
def test_cut_then_resume_at_every_point_gives_the_uncut_answer(client: Client, fault: str) -> None:
    """For every cut point, the records received + the resumed ones are the whole turn, once."""
    text = "say exactly: alpha beta gamma delta epsilon"
    reference, _, _ = _send(client, text)
    total = len(records(reference.body))
    for cut in range(total + 1):
        _patch(client, cut_after_events=cut)
        first, hdrs, cid = _send(client, f"{text} #sim:fault={fault}")
        got = records(first.body)
        assert (len(got) <= cut and b"[DONE]" not in b"".join(got)) or cut >= total
        if fault == "truncated_resumable":
            assert len(got) == min(cut, total)  # a clean close loses nothing
        rest = _resume(client, cid, len(got), hdrs["X-Conduit-Token"])
        joined = got + turn_records(rest.body, len(got))
        assert len(joined) == total and joined[-1] == b"data: [DONE]\n\n"
        assert joined[0] == DELTA_ENCODING and DELTA_ENCODING not in joined[1:]
        assert v1_answer(b"".join(joined)) == "alpha beta gamma delta epsilon"


def test_resumed_streams_can_break_again(client: Client) -> None:
    """resume_cuts=2: the first two resumes break too; the third one completes the answer."""
    _patch(client, cut_after_events=4, resume_cuts=2)
    first, hdrs, cid = _send(client, "say exactly: a b c d e f g h #sim:fault=truncated_resumable")
    got = records(first.body)
    assert len(got) == 4
    sizes = []
    for _ in range(3):
        more = turn_records(_resume(client, cid, len(got), hdrs["X-Conduit-Token"]).body, len(got))
        sizes.append(len(more))
        got += more
    assert sizes[:2] == [4, 4] and got[-1] == b"data: [DONE]\n\n"
    assert v1_answer(b"".join(got)) == "a b c d e f g h"
    assert client.server.state.stats.streams_truncated == 3


def test_legacy_turns_resume_too(client: Client) -> None:
    """A legacy-encoded E3 turn has no `delta_encoding`: nothing is re-sent on resume."""
    _patch(client, cut_after_events=3)
    text = "say exactly: x y z #sim:fault=truncated_resumable"
    first, hdrs, cid = _send(client, text, supported_encodings=[])
    assert not first.body.startswith(b"event:") and len(records(first.body)) == 3
    rest = _resume(client, cid, 3, hdrs["X-Conduit-Token"])
    assert not rest.body.startswith(b"event:")
    final = json.loads(records(rest.body)[-3][len(b"data: ") :])
    assert final["message"]["content"]["parts"] == ["x y z"]


def test_resume_refusals(client: Client) -> None:
    """Resume: other owner 404, bad conduit 403 empty, offset past the end or bad body 422."""
    reply, hdrs, cid = _send(client, "say exactly: hi")
    conduit = hdrs["X-Conduit-Token"]
    stranger = mint_access_token()
    assert _resume(client, cid, 0, conduit, stranger).status == 404
    bad = _resume(client, cid, 0, "not-a-conduit-token")
    assert (bad.status, bad.body) == (403, b"")
    assert _resume(client, cid, len(records(reply.body)) + 1, conduit).status == 422
    assert _resume(client, cid, len(records(reply.body)), conduit).body == DELTA_ENCODING
    for body in ({"conversation_id": cid}, {"conversation_id": cid, "offset": -1}, {"offset": 0}):
        hdrs2 = dict(client.auth(), **{"X-Conduit-Token": conduit})
        assert client.request("POST", RESUME, body, hdrs2).status == 422
    assert _resume(client, "no-such-conversation", 0, conduit).status == 404
    # A fresh conduit token of the owner also opens it (and is spent by it).
    fresh = client.conduit()
    assert _resume(client, cid, 0, fresh).status == 200
    assert _resume(client, cid, 0, fresh).status == 403


def test_resume_window(client: Client) -> None:
    """A finished turn can be resumed for resume_window seconds, then it is 404.

    The window is read when a resume comes: the first one is well inside the default
    60 s, the second comes after the turn outlived a window shortened to 0.3 s.
    """
    _, hdrs, cid = _send(client, "say exactly: hi")
    assert _resume(client, cid, 0, hdrs["X-Conduit-Token"]).status == 200
    _patch(client, resume_window=0.3)
    time.sleep(0.4)
    assert _resume(client, cid, 0, hdrs["X-Conduit-Token"]).status == 404


def _status(client: Client, cid: str, token: str | None = None) -> int:
    path = f"/backend-api/conversation/{cid}/stream_status"
    return client.request("GET", path, headers=client.auth(token)).status


def test_stream_status_while_streaming_cut_and_after(client: Client) -> None:
    """IS_STREAMING while a stream runs and while a cut turn awaits resume; 404 once done."""
    _patch(client, chunk_delay=0.05)
    hdrs = client.e3_headers()
    cid_box: list[str] = []
    done = threading.Event()

    def run() -> None:
        reply = _stream(client, SEND, e3_body("say exactly: a b c d e f g h i j"), hdrs)
        cid_box.append(_conversation_id(client, records(reply.body)))
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 5
    while not client.server.state.turns.running() and time.monotonic() < deadline:
        time.sleep(0.01)
    (live,) = client.server.state.turns.running()
    reply = client.request(
        "GET",
        f"/backend-api/conversation/{live.conversation_id}/stream_status",
        headers=client.auth(),
    )
    assert (reply.status, reply.json()) == (200, {"status": "IS_STREAMING"})
    assert _status(client, live.conversation_id, mint_access_token()) == 404  # not theirs
    assert done.wait(10)
    thread.join()
    assert _status(client, cid_box[0]) == 404
    _patch(client, chunk_delay=0.0, cut_after_events=2)
    _, _, cut_cid = _send(client, "say exactly: q r s #sim:fault=truncated_resumable")
    assert _status(client, cut_cid) == 200  # inside the default 60 s window
    _patch(client, resume_window=0.5)  # read at each check: the cut turn is now past it
    time.sleep(0.6)
    assert _status(client, cut_cid) == 404
    assert client.server.state.stats.stream_status == 5


def test_stop_conversation_ends_the_running_stream(client: Client) -> None:
    """stop_conversation ends a running stream with [DONE] at once; the turn is then gone."""
    _patch(client, chunk_delay=0.2)
    hdrs = client.e3_headers()
    result: list[Reply] = []
    thread = threading.Thread(
        target=lambda: result.append(
            _stream(client, SEND, e3_body("say exactly: " + "word " * 40), hdrs)
        )
    )
    thread.start()
    deadline = time.monotonic() + 5
    while not client.server.state.turns.running() and time.monotonic() < deadline:
        time.sleep(0.01)
    (live,) = client.server.state.turns.running()
    body = {"conversation_id": live.conversation_id, "exclude_async_types": []}
    stopped = client.request("POST", STOP, body, client.auth())
    assert (stopped.status, stopped.json()) == (200, {"success": True})
    thread.join()  # not stopped, the answer ends by itself after its 40+ records (8+ s)
    got = records(result[0].body)
    # The whole answer is 40+ records; a stopped one ends early, with [DONE].
    assert got[-1] == b"data: [DONE]\n\n" and len(got) < 20
    assert client.server.state.stats.turns_stopped == 1
    assert _status(client, live.conversation_id) == 404
    assert _resume(client, live.conversation_id, 0, hdrs["X-Conduit-Token"]).status == 404
    # Stopping again is a no-op; an unknown conversation is 404.
    assert client.request("POST", STOP, body, client.auth()).status == 200
    assert client.server.state.stats.turns_stopped == 1
    unknown = {"conversation_id": "nope", "exclude_async_types": []}
    assert client.request("POST", STOP, unknown, client.auth()).status == 404
    assert client.request("POST", STOP, {}, client.auth()).status == 422


def test_stop_a_cut_turn(client: Client) -> None:
    """A turn cut and not yet resumed can be stopped: it is no longer resumable."""
    _patch(client, cut_after_events=2)
    _, hdrs, cid = _send(client, "say exactly: m n o #sim:fault=cut_resumable")
    body = {"conversation_id": cid, "exclude_async_types": []}
    assert client.request("POST", STOP, body, client.auth()).status == 200
    assert client.server.state.stats.turns_stopped == 1
    assert _resume(client, cid, 2, hdrs["X-Conduit-Token"]).status == 404


def test_resumable_cut_on_the_e2_path(client: Client) -> None:
    """On the E2 path the resumable faults break the stream alike (there is no resume)."""
    _patch(client, cut_after_events=3)
    body = conversation_body("hi #sim:fault=truncated_resumable #sim:words=5", v1=True)
    reply = _stream(client, "/backend-api/conversation", body, client.sentinel())
    got = records(reply.body)
    assert len(got) == 3 and b"[DONE]" not in b"".join(got)
    assert client.server.state.turns.turns == {}
    assert client.server.state.stats.streams_truncated == 1
    full = client.converse("hi #sim:words=5", v1=True)
    assert v1_answer(full.body) == reply_text("hi", 5)


def test_turns_past_the_window_are_dropped(client: Client) -> None:
    """With resume_window=0 each new turn drops the finished ones before it."""
    _patch(client, resume_window=0.0)
    for i in range(3):
        assert client.e3_converse(f"say exactly: {i}").status == 200
    assert len(client.server.state.turns.turns) == 1
    _patch(client, resume_window=60.0)
    for i in range(3):
        assert client.e3_converse(f"say exactly: {i}").status == 200
    assert len(client.server.state.turns.turns) == 4


def test_era_e2_records_the_refused_e3_send(client: Client) -> None:
    """In era e2 an f/conversation POST is counted and recorded, then answered 404."""
    _patch(client, era="e2")
    reply = client.request("POST", SEND, e3_body("x"), client.auth())
    assert (reply.status, reply.json()) == (404, {"detail": "Not Found"})
    assert [r["path"] for r in client.server.state.requests] == [SEND]
    assert client.server.state.stats.e3_conversations == 1
    assert client.server.state.stats.streams_started == 0


def test_resume_with_the_streams_resume_token(client: Client) -> None:
    """The stream's resume_conversation_token opens its own turn (not another turn's)."""
    _patch(client, cut_after_events=4)
    first, _, cid = _send(client, "say exactly: p q r s #sim:fault=truncated_resumable")
    got = records(first.body)
    token = json.loads(got[1][len(b"data: ") :])
    assert token["type"] == "resume_conversation_token" and token["conversation_id"] == cid
    rest = _resume(client, cid, len(got), token["token"])
    assert rest.status == 200
    assert v1_answer(b"".join(got + turn_records(rest.body, len(got)))) == "p q r s"
    _, _, other_cid = _send(client, "say exactly: t")
    assert other_cid != cid
    refused = _resume(client, other_cid, 0, token["token"])
    assert (refused.status, refused.body) == (403, b"")
