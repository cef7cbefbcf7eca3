"""Conversation history: kept conversations, follow-ups, ownership, GET endpoints, caps."""

from __future__ import annotations

import datetime
import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from chat2api.sim import mint_access_token, reasoning_text, reply_text

from .conftest import DEVICE, Client, Reply, apply_v1, sse_records

NOT_FOUND = {
    "detail": {
        "code": "conversation_not_found",
        "message": "Conversation not found or you do not have access to it.",
    }
}


def msg(role: str, text: str, msg_id: str | None = None) -> dict[str, Any]:
    """One request message (spec 4.1 shape) with a fresh id unless given."""
    return {
        "id": msg_id or str(uuid.uuid4()),
        "author": {"role": role},
        "content": {"content_type": "text", "parts": [text]},
        "metadata": {},
    }


@dataclass
class Turned:
    """What a client learns from one answered conversation request."""

    reply: Reply
    conversation_id: str
    answer_id: str
    answer: dict[str, Any]
    records: list[tuple[str | None, str]]

    def types(self) -> list[str]:
        """The `type` of every control record."""
        out = []
        for event, data in self.records:
            if event is None and data != "[DONE]":
                kind = json.loads(data).get("type")
                if kind:
                    out.append(kind)
        return out


def send(
    client: Client,
    messages: list[dict[str, Any]],
    *,
    cid: str | None = None,
    parent: str | None = "c6a1f0d2-9e3b-4a7c-8d15-2b4e6f8a0c31",
    v1: bool = False,
    keep: bool = True,
    token: str | None = None,
    prefix: str = "/backend-api",
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Reply:
    """One conversation POST carrying exactly `messages` (raw reply)."""
    body: dict[str, Any] = {"messages": messages, "history_and_training_disabled": not keep}
    if cid is not None:
        body["conversation_id"] = cid
    if parent is None:
        body["parent_message_id"] = None
    else:
        body["parent_message_id"] = parent
    body.update(extra or {})
    return client.converse("", v1=v1, token=token, prefix=prefix, headers=headers, extra=body)


def answered(reply: Reply, v1: bool) -> Turned:
    """Decode the conversation id and the final answer of a 200 stream (either format)."""
    assert reply.status == 200, reply.body
    recs = sse_records(reply.body)
    if v1:
        roots = apply_v1(recs)
        answer = roots[max(roots)]["message"]
        cid = roots[max(roots)]["conversation_id"]
    else:
        snaps = [json.loads(d) for e, d in recs if d != "[DONE]" and '"message"' in d]
        answer = snaps[-1]["message"]
        cid = snaps[-1]["conversation_id"]
    assert answer["author"]["role"] == "assistant" and answer["end_turn"] is True
    return Turned(reply, cid, answer["id"], answer, recs)


def text_of(message: dict[str, Any]) -> str:
    """The text of a message object."""
    return str(message["content"]["parts"][0])


@pytest.mark.parametrize("v1", [False, True], ids=["legacy", "v1"])
def test_keep_and_continue(client: Client, v1: bool) -> None:
    """A kept conversation continues: same id, whole branch seen, only new turns sent."""
    state = client.server.state
    first = answered(send(client, [msg("system", "Be terse."), msg("user", "hello")], v1=v1), v1)
    assert text_of(first.answer) == reply_text("hello", 30)
    assert "title_generation" in first.types()
    assert state.stats.conversations_kept == 1

    new_user = msg("user", "say exactly: again")
    follow = answered(
        send(client, [new_user], cid=first.conversation_id, parent=first.answer_id, v1=v1), v1
    )
    assert follow.conversation_id == first.conversation_id
    assert text_of(follow.answer) == "again"
    assert follow.answer["metadata"]["parent_id"] == new_user["id"]
    assert "title_generation" not in follow.types()
    objs = [json.loads(d) for _, d in follow.records if d != "[DONE]"]
    objs += [o["v"] for o in objs if isinstance(o, dict) and isinstance(o.get("v"), dict)]
    ids = {o.get("conversation_id") for o in objs if isinstance(o, dict)}
    assert ids - {None} == {first.conversation_id}
    assert state.last_prompt() == [
        ("system", "Be terse."),
        ("user", "hello"),
        ("assistant", reply_text("hello", 30)),
        ("user", "say exactly: again"),
    ]
    assert state.last_request_messages() == [("user", "say exactly: again")]
    got = client.request("GET", "/_sim/last_prompt").json()
    assert got["request_messages"] == [{"role": "user", "text": "say exactly: again"}]
    assert [m["role"] for m in got["messages"]] == ["system", "user", "assistant", "user"]
    assert (state.stats.follow_ups, state.stats.conversations_kept) == (1, 1)

    third = answered(
        send(client, [msg("user", "more")], cid=first.conversation_id, parent=follow.answer_id),
        False,
    )
    assert [r for r, _ in state.last_prompt()] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert text_of(third.answer) == reply_text("more", 30)


def test_v1_follow_up_echoes_the_parent_answer(client: Client) -> None:
    """v1: the previous answer is re-added first (finished, end_turn null); legacy does not."""
    first = answered(send(client, [msg("user", "say exactly: one")], v1=True), True)
    follow = send(client, [msg("user", "two")], cid=first.conversation_id, parent=first.answer_id)
    legacy_roles = [
        json.loads(d)["message"]["author"]["role"]
        for _, d in sse_records(follow.body)
        if '"message"' in d
    ]
    assert legacy_roles[0] == "user"
    follow = send(
        client, [msg("user", "three")], cid=first.conversation_id, parent=first.answer_id, v1=True
    )
    roots = apply_v1(sse_records(follow.body))
    echo = roots[1]["message"]
    assert (echo["id"], echo["author"]["role"], echo["status"], echo["end_turn"]) == (
        first.answer_id,
        "assistant",
        "finished_successfully",
        None,
    )
    assert text_of(echo) == "one"
    assert roots[2]["message"]["author"]["role"] == "user"
    assert text_of(roots[max(roots)]["message"]) == reply_text("three", 30)


def test_other_account_gets_404(client: Client) -> None:
    """A conversation is its owner's: another token or device gets 404 conversation_not_found."""
    first = answered(send(client, [msg("user", "mine")]), False)
    other = mint_access_token()
    reply = send(client, [msg("user", "x")], cid=first.conversation_id, token=other)
    assert (reply.status, reply.json()) == (404, NOT_FOUND)
    assert reply.headers["content-type"] == "application/json"
    got = client.request(
        "GET", f"/backend-api/conversation/{first.conversation_id}", headers=client.auth(other)
    )
    assert (got.status, got.json()) == (404, NOT_FOUND)
    anon = send(client, [msg("user", "x")], cid=first.conversation_id, prefix="/backend-anon")
    assert anon.status == 404
    assert client.server.state.stats.conversation_not_found == 3


def test_same_account_with_new_token_continues(client: Client) -> None:
    """Ownership follows the token's user and account, not the token string."""
    token = mint_access_token(account_id="acct-1", user_id="user-1")
    first = answered(send(client, [msg("user", "hi")], token=token), False)
    again = mint_access_token(account_id="acct-1", user_id="user-1")
    follow = send(
        client, [msg("user", "x")], cid=first.conversation_id, parent=first.answer_id, token=again
    )
    assert follow.status == 200
    stranger = mint_access_token(account_id="acct-1", user_id="user-2")
    refused = send(
        client,
        [msg("user", "x")],
        cid=first.conversation_id,
        parent=first.answer_id,
        token=stranger,
    )
    assert refused.status == 404


def test_unknown_conversation_404(client: Client) -> None:
    """A client-given conversation_id the simulator never kept is 404, and nothing is kept."""
    reply = send(client, [msg("user", "x")], cid=str(uuid.uuid4()))
    assert (reply.status, reply.json()) == (404, NOT_FOUND)
    assert len(client.server.state.conversations) == 0
    assert client.server.state.last_prompt() == [("user", "x")]


def test_unknown_parent_404(client: Client) -> None:
    """A parent that is not a node of the conversation is 404 message_not_found."""
    first = answered(send(client, [msg("user", "hi")]), False)
    for parent in (str(uuid.uuid4()), None):
        reply = send(client, [msg("user", "x")], cid=first.conversation_id, parent=parent)
        assert reply.status == 404
        assert reply.json()["detail"]["code"] == "message_not_found"
    detail = client.request(
        "GET", f"/backend-api/conversation/{first.conversation_id}", headers=client.auth()
    ).json()
    assert len(detail["mapping"]) == 3


def test_branch_from_an_older_node(client: Client) -> None:
    """Sending under an older node starts a sibling branch; the model sees only that branch."""
    first = answered(send(client, [msg("user", "a")]), False)
    cid = first.conversation_id
    second = answered(send(client, [msg("user", "b")], cid=cid, parent=first.answer_id), False)
    branch = answered(send(client, [msg("user", "c")], cid=cid, parent=first.answer_id), False)
    assert [t for _, t in client.server.state.last_prompt()] == [
        "a",
        reply_text("a", 30),
        "c",
    ]
    detail = client.request("GET", f"/backend-api/conversation/{cid}", headers=client.auth()).json()
    assert len(detail["mapping"][first.answer_id]["children"]) == 2
    assert detail["current_node"] == branch.answer_id
    assert second.answer_id in detail["mapping"]


def test_variant_regenerates_from_the_branch(client: Client) -> None:
    """action variant with no messages answers the branch's last user message again."""
    user = msg("user", "say exactly: same")
    first = answered(send(client, [user]), False)
    regen = answered(
        send(
            client,
            [],
            cid=first.conversation_id,
            parent=user["id"],
            extra={"action": "variant"},
        ),
        False,
    )
    assert text_of(regen.answer) == "same" and regen.answer_id != first.answer_id
    assert client.server.state.last_request_messages() == []
    assert client.server.state.last_prompt() == [("user", "say exactly: same")]


@pytest.mark.parametrize("v1", [False, True], ids=["legacy", "v1"])
def test_temporary_chat_not_kept(client: Client, v1: bool) -> None:
    """history_and_training_disabled true keeps nothing; its id cannot be continued."""
    first = answered(send(client, [msg("user", "tmp")], keep=False, v1=v1), v1)
    state = client.server.state
    assert len(state.conversations) == 0 and state.stats.conversations_kept == 0
    reply = send(client, [msg("user", "x")], cid=first.conversation_id, parent=first.answer_id)
    assert reply.status == 404
    listed = client.request("GET", "/backend-api/conversations", headers=client.auth()).json()
    assert listed["items"] == [] and listed["total"] == 0


def test_get_conversation_shape(client: Client) -> None:
    """GET /backend-api/conversation/{id}: spec 1.8 keys, root node, chain, float times."""
    root = "c6a1f0d2-9e3b-4a7c-8d15-2b4e6f8a0c31"
    user = msg("user", "What is a heron bird")
    first = answered(send(client, [user], v1=True, extra={"model": "gpt-4o"}), True)
    got = client.request(
        "GET", f"/backend-api/conversation/{first.conversation_id}", headers=client.auth()
    )
    assert got.status == 200 and got.headers["content-type"] == "application/json"
    detail = got.json()
    assert set(detail) == {
        "title", "create_time", "update_time", "mapping", "moderation_results", "current_node",
        "conversation_id", "conversation_template_id", "gizmo_id", "is_archived", "safe_urls",
        "default_model_slug", "async_status",
    }  # fmt: skip
    assert detail["title"] == "What is a heron bird"
    assert isinstance(detail["create_time"], float) and isinstance(detail["update_time"], float)
    assert detail["conversation_id"] == first.conversation_id
    assert detail["current_node"] == first.answer_id
    assert detail["default_model_slug"] == "gpt-4o"
    assert detail["is_archived"] is False and detail["moderation_results"] == []
    mapping = detail["mapping"]
    assert mapping[root] == {"id": root, "message": None, "parent": None, "children": [user["id"]]}
    node = mapping[user["id"]]
    assert node["parent"] == root and node["children"] == [first.answer_id]
    assert node["message"]["content"] == user["content"]
    answer = mapping[first.answer_id]
    assert answer["parent"] == user["id"] and answer["children"] == []
    assert answer["message"]["status"] == "finished_successfully"
    assert answer["message"]["end_turn"] is True
    assert text_of(answer["message"]) == text_of(first.answer)
    assert answer["message"]["metadata"]["finish_details"]["type"] == "stop"
    assert client.server.state.stats.conversation_gets == 1


def test_reasoning_turn_kept_but_thoughts_not_seen(client: Client) -> None:
    """Thoughts and recap are nodes of the tree, but the next turn's prompt leaves them out."""
    first = answered(send(client, [msg("user", "why")], extra={"model": "o3"}), False)
    cid = first.conversation_id
    detail = client.request("GET", f"/backend-api/conversation/{cid}", headers=client.auth()).json()
    kinds = [
        n["message"]["content"]["content_type"] for n in detail["mapping"].values() if n["message"]
    ]
    assert kinds == ["text", "thoughts", "reasoning_recap", "text"]
    thoughts = [n for n in detail["mapping"].values() if n["message"] and n["children"]][1]
    assert thoughts["message"]["content"]["thoughts"][0]["content"] == reasoning_text("why")
    send(client, [msg("user", "ok")], cid=cid, parent=first.answer_id)
    assert client.server.state.last_prompt() == [
        ("user", "why"),
        ("assistant", reply_text("why", 30)),
        ("user", "ok"),
    ]


def test_moderated_turn_keeps_only_the_user_message(client: Client) -> None:
    """A moderated turn streams no answer, so only its user message is kept."""
    user = msg("user", "bad #sim:fault=moderation")
    reply = send(client, [user], v1=True)
    cid = json.loads(sse_records(reply.body)[1][1])["conversation_id"]
    detail = client.request("GET", f"/backend-api/conversation/{cid}", headers=client.auth()).json()
    assert detail["current_node"] == user["id"] and len(detail["mapping"]) == 2


def test_reused_message_id_is_refused(client: Client) -> None:
    """A kept turn whose message id is already in the conversation is 400 duplicate_message_id."""
    user = msg("user", "hi")
    first = answered(send(client, [user]), False)
    reply = send(client, [user], cid=first.conversation_id, parent=first.answer_id)
    assert reply.status == 400
    assert reply.json()["detail"]["code"] == "duplicate_message_id"


def test_anonymous_conversations_belong_to_the_device(client: Client) -> None:
    """/backend-anon keeps conversations per OAI-Device-Id."""
    first = answered(send(client, [msg("user", "anon")], prefix="/backend-anon"), False)
    follow = send(
        client,
        [msg("user", "more")],
        cid=first.conversation_id,
        parent=first.answer_id,
        prefix="/backend-anon",
    )
    assert follow.status == 200
    got = client.request(
        "GET",
        f"/backend-anon/conversation/{first.conversation_id}",
        headers={"OAI-Device-Id": "another-device"},
    )
    assert got.status == 404
    mine = client.request(
        "GET", "/backend-anon/conversations", headers={"OAI-Device-Id": DEVICE}
    ).json()
    assert [c["id"] for c in mine["items"]] == [first.conversation_id]


def test_list_conversations(client: Client) -> None:
    """GET /backend-api/conversations: the owner's, newest update first, paged, spec 1.8 shape."""
    made = [answered(send(client, [msg("user", f"topic {i}")]), False) for i in range(3)]
    send(client, [msg("user", "x")], cid=made[0].conversation_id, parent=made[0].answer_id)
    send(client, [msg("user", "other")], token=mint_access_token())
    listed = client.request(
        "GET", "/backend-api/conversations?offset=0&limit=2&order=updated", headers=client.auth()
    )
    assert listed.status == 200
    page = listed.json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 0)
    assert page["has_missing_conversations"] is False
    ids = [c["id"] for c in page["items"]]
    assert ids == [made[0].conversation_id, made[2].conversation_id]
    item = page["items"][0]
    assert set(item) == {
        "id", "title", "create_time", "update_time", "mapping", "current_node",
        "conversation_template_id", "gizmo_id", "is_archived",
    }  # fmt: skip
    assert item["title"] == "topic 0" and item["mapping"] is None
    assert datetime.datetime.fromisoformat(item["update_time"]).tzinfo is not None
    rest = client.request("GET", "/backend-api/conversations?offset=2", headers=client.auth())
    assert [c["id"] for c in rest.json()["items"]] == [made[1].conversation_id]
    path = "/backend-api/conversations?order=created"
    created = client.request("GET", path, headers=client.auth())
    assert [c["id"] for c in created.json()["items"]] == [m.conversation_id for m in reversed(made)]
    bad = client.request("GET", "/backend-api/conversations?limit=0", headers=client.auth())
    assert bad.status == 422
    assert client.request("GET", "/backend-api/conversations").status == 401
    assert client.server.state.stats.conversation_lists == 5


def test_reset_and_cap(client: Client) -> None:
    """POST /_sim/reset forgets conversations; past max_conversations the stalest is dropped."""
    client.request("POST", "/_sim/config", {"max_conversations": 2})
    made = [answered(send(client, [msg("user", f"c{i}")]), False) for i in range(2)]
    send(client, [msg("user", "x")], cid=made[0].conversation_id, parent=made[0].answer_id)
    answered(send(client, [msg("user", "c2")]), False)
    state = client.server.state
    assert len(state.conversations) == 2
    gone = send(client, [msg("user", "x")], cid=made[1].conversation_id, parent=made[1].answer_id)
    assert gone.status == 404
    assert client.request("POST", "/_sim/reset").status == 200
    assert len(state.conversations) == 0 and state.last_prompt() == []
    again = send(client, [msg("user", "x")], cid=made[0].conversation_id, parent=made[0].answer_id)
    assert again.status == 404
