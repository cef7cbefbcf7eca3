"""Conversation streams: exact records in the delta-v1 and legacy encodings."""

from __future__ import annotations

import json

from chat2api.sim import reasoning_text, reply_text

from .conftest import DEVICE, Client, apply_v1, sse_records

USER_ID = "8b9d5c3e-77a1-4f0e-b2d4-6e5f1a3c2b99"


def test_v1_exact_record_sequence(client: Client) -> None:
    """delta v1: encoding, resume token, echoes, markers, appends, patch, tail, [DONE]."""
    reply = client.converse("hello there #sim:words=4", v1=True, model="auto")
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/event-stream; charset=utf-8"
    recs = sse_records(reply.body)
    text = reply_text("hello there", 4)
    words = text.split(" ")
    assert recs[0] == ("delta_encoding", '"v1"')
    kinds = [json.loads(d).get("type") if e is None and d != "[DONE]" else e or d for e, d in recs]
    assert kinds == [
        "delta_encoding", "resume_conversation_token", "delta", "delta", "input_message",
        "delta", "message_marker", "delta", "delta", "delta", "delta", "message_marker",
        "title_generation", "server_ste_metadata", "message_stream_complete",
        "conversation_detail_metadata", "[DONE]",
    ]  # fmt: skip
    sys_add, user_add, asst_add = (json.loads(recs[i][1]) for i in (2, 3, 5))
    assert (sys_add["p"], sys_add["o"], sys_add["c"]) == ("", "add", 0)
    assert sys_add["v"]["message"]["metadata"] == {"is_visually_hidden_from_conversation": True}
    assert set(user_add) == {"v", "c"} and user_add["c"] == 1
    assert user_add["v"]["message"]["id"] == USER_ID
    assert user_add["v"]["message"]["status"] == "finished_successfully"
    assert set(asst_add) == {"v", "c"} and asst_add["c"] == 2
    msg = asst_add["v"]["message"]
    assert (msg["status"], msg["channel"], msg["content"]["parts"]) == (
        "in_progress",
        "final",
        [""],
    )
    assert msg["metadata"]["model_slug"] == "gpt-5-3" and msg["metadata"]["parent_id"] == USER_ID
    assert json.loads(recs[7][1]) == {"p": "/message/content/parts/0", "o": "append", "v": words[0]}
    assert json.loads(recs[8][1]) == {"v": " " + words[1]}
    assert json.loads(recs[9][1]) == {"v": " " + words[2]}
    patch = json.loads(recs[10][1])
    assert patch == {
        "p": "",
        "o": "patch",
        "v": [
            {"p": "/message/content/parts/0", "o": "append", "v": " " + words[3]},
            {"p": "/message/status", "o": "replace", "v": "finished_successfully"},
            {"p": "/message/end_turn", "o": "replace", "v": True},
            {
                "p": "/message/metadata",
                "o": "append",
                "v": {
                    "is_complete": True,
                    "finish_details": {"type": "stop", "stop_tokens": [200002]},
                },
            },
        ],
    }
    ste = json.loads(recs[13][1])
    assert ste["metadata"]["model_slug"] == "gpt-5-3" and ste["metadata"]["plan_type"] == "plus"
    cid = json.loads(recs[1][1])["conversation_id"]
    assert all(json.loads(d).get("conversation_id", cid) == cid for _, d in recs[1:-1])
    answer = apply_v1(recs)[2]["message"]
    assert answer["content"]["parts"] == [text] and answer["end_turn"] is True


def test_legacy_exact_snapshots(client: Client) -> None:
    """Legacy: user echo, in_progress snapshots growing word by word, final, title, [DONE]."""
    reply = client.converse("say exactly: Hi there friend")
    recs = sse_records(reply.body)
    assert all(event is None for event, _ in recs) and recs[-1] == (None, "[DONE]")
    objs = [json.loads(d) for _, d in recs[:-1]]
    assert objs[0]["message"]["author"]["role"] == "user" and objs[0]["error"] is None
    parts = [o["message"]["content"]["parts"][0] for o in objs[1:-1]]
    assert parts == ["", "Hi", "Hi there", "Hi there friend", "Hi there friend"]
    statuses = [o["message"]["status"] for o in objs[1:-1]]
    assert statuses == ["in_progress"] * 4 + ["finished_successfully"]
    final = objs[-2]["message"]
    assert final["end_turn"] is True and final["metadata"]["finish_details"]["type"] == "stop"
    assert final["metadata"]["model_slug"] == "gpt-4o"
    assert objs[-1] == {
        "type": "title_generation",
        "title": "say exactly: Hi there friend",
        "conversation_id": objs[0]["conversation_id"],
    }


def test_follow_up_has_no_title_and_keeps_conversation_id(client: Client) -> None:
    """A follow-up in a kept conversation streams its id and no title_generation."""
    first = client.converse("first", extra={"history_and_training_disabled": False})
    recs = [json.loads(d) for e, d in sse_records(first.body) if e is None and d != "[DONE]"]
    cid = recs[0]["conversation_id"]
    parent = recs[-2]["message"]["id"]
    for n, v1 in enumerate((False, True)):
        body = {
            "conversation_id": cid,
            "parent_message_id": parent,
            "messages": [
                {
                    "id": f"00000000-0000-4000-8000-00000000000{n}",
                    "author": {"role": "user"},
                    "content": {"content_type": "text", "parts": ["again"]},
                }
            ],
        }
        reply = client.converse("again", v1=v1, extra=body)
        assert reply.status == 200, reply.body
        recs = [json.loads(d) for e, d in sse_records(reply.body) if e is None and d != "[DONE]"]
        assert not [r for r in recs if r.get("type") == "title_generation"]
        assert {r["conversation_id"] for r in recs} == {cid}


def test_v1_reasoning_stream(client: Client) -> None:
    """A thinking model streams thoughts (analysis), a recap, then the final answer."""
    reply = client.converse("why? #sim:words=3", v1=True, model="gpt-5-4-thinking")
    roots = apply_v1(sse_records(reply.body))
    thoughts, recap, answer = roots[2]["message"], roots[3]["message"], roots[4]["message"]
    assert thoughts["channel"] == "analysis" and thoughts["content"]["content_type"] == "thoughts"
    assert thoughts["content"]["thoughts"] == [
        {
            "summary": "Planning the reply",
            "content": reasoning_text("why?"),
            "chunks": [],
            "finished": True,
        }
    ]
    assert thoughts["end_turn"] is False and thoughts["status"] == "finished_successfully"
    assert recap["content"] == {"content_type": "reasoning_recap", "content": "Thought for 1s"}
    assert answer["content"]["parts"] == [reply_text("why?", 3)]
    assert answer["channel"] == "final" and answer["end_turn"] is True


def test_legacy_reasoning_by_system_hint(client: Client) -> None:
    """`system_hints: ["reason"]` on auto also yields thoughts before the answer (legacy)."""
    reply = client.converse("hm #sim:words=2", extra={"system_hints": ["reason"]}, model="auto")
    msgs = [json.loads(d)["message"] for _, d in sse_records(reply.body)[:-1] if "message" in d]
    types = [m["content"]["content_type"] for m in msgs]
    assert types[0] == "text" and types[1] == "thoughts" and "reasoning_recap" in types
    last_thought = [m for m in msgs if m["content"]["content_type"] == "thoughts"][-1]
    assert last_thought["content"]["thoughts"][0]["content"] == reasoning_text("hm")
    assert msgs[-1]["content"]["parts"] == [reply_text("hm", 2)]
    assert msgs[-1]["metadata"]["model_slug"] == "gpt-5-3"


def test_anonymous_conversation_and_recording(client: Client) -> None:
    """/backend-anon works with OAI-Device-Id; requests are recorded with lower-cased headers."""
    reply = client.converse(
        "say exactly: anon", prefix="/backend-anon", headers={"ChatGPT-Account-Id": "acc-42"}
    )
    assert reply.status == 200
    recorded = client.request("GET", "/_sim/requests").json()["requests"]
    assert [r["path"] for r in recorded] == [
        "/backend-anon/sentinel/chat-requirements",
        "/backend-anon/conversation",
    ]
    conv = recorded[1]
    assert conv["headers"]["oai-device-id"] == DEVICE and conv["account_id"] == "acc-42"
    assert conv["body"]["messages"][0]["content"]["parts"] == ["say exactly: anon"]
    stats = client.request("GET", "/_sim/stats").json()
    assert (stats["requirements"], stats["conversations"], stats["streams_completed"]) == (1, 1, 1)
