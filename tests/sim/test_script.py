"""Scripted mode: queued exact answers, their exact stream steps, and reading back the prompt."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from chat2api.sim import mint_access_token, reply_text

from .conftest import Client, conversation_body, sse_records

PARTS = "/message/content/parts/0"
THOUGHT = "/message/content/thoughts/0/content"
# Looks like code fences, tool-call markup, JSON, SSE framing and escapes; mixes scripts/emoji.
ADVERSARIAL = (
    'Sure.\n\n```json\n{"name": "get_weather", "arguments": {"city": "Zürich \\"HB\\""}}\n```\n'
    "<tool_call>{{}}</tool_call> 'single' \"double\" `tick` a<b>c & \\u0041 \\n\t\r\n"
    'data: [DONE]\n\nevent: delta\ndata: {"v": "x"}\n\n'
    "漢字 é 🧑\u200d💻 \u2028\u2029 \x00\x1f end"
)


def _events(raw: bytes) -> list[tuple[str | None, Any]]:
    """SSE records with their data parsed as JSON ("[DONE]" kept as a string)."""
    return [(e, d if d == "[DONE]" else json.loads(d)) for e, d in sse_records(raw)]


def _v1_steps(raw: bytes, path: str = PARTS) -> list[str]:
    """The append values to `path`, in order (carry-forward of p/o; patch sub-ops included)."""
    out: list[str] = []
    p = o = None
    for event, data in _events(raw):
        if event != "delta":
            continue
        p, o = data.get("p", p), data.get("o", o)
        if o == "append" and p == path:
            out.append(data["v"])
        elif o == "patch":
            out += [s["v"] for s in data["v"] if s["p"] == path and s["o"] == "append"]
    return out


def _legacy_snapshots(raw: bytes, content_type: str) -> list[dict[str, Any]]:
    """The assistant message snapshots of one content type, in order."""
    return [
        d["message"]
        for e, d in _events(raw)
        if isinstance(d, dict)
        and isinstance(d.get("message"), dict)
        and d["message"]["author"]["role"] == "assistant"
        and d["message"]["content"]["content_type"] == content_type
    ]


def _legacy_steps(raw: bytes) -> list[str]:
    """The text each in-progress answer snapshot added; the final snapshot must repeat the last."""
    snaps = _legacy_snapshots(raw, "text")
    texts = [s["content"]["parts"][0] for s in snaps]
    assert texts[0] == "" and snaps[-1]["status"] == "finished_successfully"
    assert texts[-1] == texts[-2] and all(s["status"] == "in_progress" for s in snaps[:-1])
    steps = []
    for before, after in itertools.pairwise(texts[:-1]):
        assert after.startswith(before)
        steps.append(after[len(before) :])
    return steps


def _answer(raw: bytes, v1: bool) -> str:
    if v1:
        return "".join(_v1_steps(raw))
    return str(_legacy_snapshots(raw, "text")[-1]["content"]["parts"][0])


def _finish(raw: bytes, v1: bool) -> str:
    if v1:
        patches = [d for e, d in _events(raw) if e == "delta" and d.get("o") == "patch"]
        meta = [s["v"] for s in patches[-1]["v"] if s["p"] == "/message/metadata"]
        return str(meta[0]["finish_details"]["type"])
    return str(_legacy_snapshots(raw, "text")[-1]["metadata"]["finish_details"]["type"])


@pytest.mark.parametrize("v1", [False, True])
def test_scripted_reply_is_exact(client: Client, v1: bool) -> None:
    """A scripted reply full of markup, framing look-alikes and unicode arrives byte-exactly."""
    client.server.state.script(ADVERSARIAL)
    reply = client.converse("say exactly: something else #sim:words=3", v1=v1, model="o3")
    assert reply.status == 200
    assert _answer(reply.body, v1) == ADVERSARIAL
    assert ADVERSARIAL.encode() not in reply.body  # escaped inside JSON, never raw on the wire
    assert reply.body.endswith(b"data: [DONE]\n\n")
    # No reasoning unless the script gives some, even for a reasoning model.
    assert '"thoughts"' not in reply.body.decode()
    assert _finish(reply.body, v1) == "stop"
    assert client.server.state.stats.scripted == 1 and not client.server.state.scripts


@pytest.mark.parametrize("v1", [False, True])
def test_given_chunks_are_the_exact_steps(client: Client, v1: bool) -> None:
    """Given chunks are the stream steps: v1 append values in order, legacy snapshot growth."""
    text = '{"a": "x"} 🧑\u200d💻 done'
    chunks = ['{"', "a", '": "', "x", '"}', "", " 🧑", "\u200d", "💻 d", "one"]
    client.server.state.script(text, chunks=chunks)
    reply = client.converse("hi", v1=v1)
    steps = _v1_steps(reply.body) if v1 else _legacy_steps(reply.body)
    assert steps == chunks


@pytest.mark.parametrize("v1", [False, True])
def test_empty_and_single_chunk_replies(client: Client, v1: bool) -> None:
    """An empty script streams no text step; a one-chunk script streams exactly one."""
    client.server.state.script("")
    empty = client.converse("hi", v1=v1)
    assert (_v1_steps(empty.body) if v1 else _legacy_steps(empty.body)) == []
    assert _answer(empty.body, v1) == "" and empty.body.endswith(b"data: [DONE]\n\n")
    client.server.state.script("all at once\n", chunks=["all at once\n"])
    one = client.converse("hi", v1=v1)
    assert (_v1_steps(one.body) if v1 else _legacy_steps(one.body)) == ["all at once\n"]


@pytest.mark.parametrize("v1", [False, True])
def test_default_chunks_are_one_word_each(client: Client, v1: bool) -> None:
    """Without chunks a scripted reply streams one word (with its leading space) per step."""
    client.server.state.script("one  two\nthree ")
    reply = client.converse("hi", v1=v1)
    steps = _v1_steps(reply.body) if v1 else _legacy_steps(reply.body)
    assert steps == ["one", "  two", "\nthree "]


@pytest.mark.parametrize("v1", [False, True])
def test_reasoning_streams_first(client: Client, v1: bool) -> None:
    """`reasoning` becomes a thoughts message before the answer, even for a non-reasoning model."""
    client.server.state.script("The answer.", reasoning="Think <b>{x}</b>\n第二")
    reply = client.converse("hi", v1=v1, model="gpt-4o")
    body = reply.body.decode()
    assert body.index('"thoughts"') < body.index('"channel":"final"')
    if v1:
        assert "".join(_v1_steps(reply.body, THOUGHT)) == "Think <b>{x}</b>\n第二"
    else:
        thought = _legacy_snapshots(reply.body, "thoughts")[-1]["content"]["thoughts"][0]
        assert thought["content"] == "Think <b>{x}</b>\n第二" and thought["finished"] is True
    assert _answer(reply.body, v1) == "The answer."


def test_fifo_across_accounts(client: Client) -> None:
    """Two scripts are used in order, by whichever account sends next; then hashed replies."""
    client.server.state.script("first")
    client.server.state.script("second")
    assert _answer(client.converse("hi", v1=True).body, True) == "first"
    other = mint_access_token(account_id="acc-other")
    assert _answer(client.converse("hi", token=other).body, False) == "second"
    assert _answer(client.converse("hi").body, False) == reply_text("hi", 30)


def test_reset_clears_scripts(client: Client) -> None:
    """POST /_sim/reset empties the script queue and forgets the last prompt."""
    client.server.state.script("never")
    client.converse("hi #sim:fault=server_error")
    assert client.request("POST", "/_sim/reset").status == 200
    assert client.request("GET", "/_sim/script").json() == {"queued": []}
    assert client.server.state.last_prompt() == []
    assert _answer(client.converse("hi").body, False) == reply_text("hi", 30)


def test_faults_take_precedence(client: Client) -> None:
    """An error fault (queued or directive) wins and leaves the script queued for the next send."""
    state = client.server.state
    state.script("scripted")
    state.queue_faults("server_error", 1)
    assert client.converse("hi").status == 500
    assert client.converse("hi #sim:fault=rate_limited").status == 429
    assert client.converse("hi #sim:fault=moderation").status == 200
    assert len(state.scripts) == 1
    assert _answer(client.converse("hi").body, False) == "scripted"


@pytest.mark.parametrize("v1", [False, True])
def test_stream_faults_shape_the_script(client: Client, v1: bool) -> None:
    """Stream-shaping faults apply to the scripted answer: max_tokens finish, truncated half-way."""
    client.server.state.script("a b c d", finish="stop")
    reply = client.converse("hi #sim:fault=max_tokens", v1=v1)
    assert _answer(reply.body, v1) == "a b c d" and _finish(reply.body, v1) == "max_tokens"
    client.server.state.script("a b c d", finish="max_tokens")
    assert _finish(client.converse("hi", v1=v1).body, v1) == "max_tokens"
    client.server.state.script("w x y z", chunks=["w", " x", " y", " z"])
    cut = client.converse("hi #sim:fault=truncated", v1=v1)
    assert b"[DONE]" not in cut.body
    if v1:
        assert _v1_steps(cut.body) == ["w", " x"]
    else:
        texts = [m["content"]["parts"][0] for m in _legacy_snapshots(cut.body, "text")]
        assert texts == ["", "w", "w x"]
    assert not client.server.state.scripts


def test_model_slug_override(client: Client) -> None:
    """model_slug replaces the served slug in the answer metadata and server_ste_metadata."""
    client.server.state.script("ok", model_slug="gpt-9-sim")
    events = _events(client.converse("hi", v1=True, model="auto").body)
    ste = [d for e, d in events if isinstance(d, dict) and d.get("type") == "server_ste_metadata"]
    assert ste[0]["metadata"]["model_slug"] == "gpt-9-sim"
    roots = [d["v"]["message"] for e, d in events if e == "delta" and d.get("o", "add") == "add"]
    answer = [m for m in roots if m and m["channel"] == "final"]
    assert answer[0]["metadata"]["model_slug"] == "gpt-9-sim"


def test_last_prompt(client: Client) -> None:
    """last_prompt gives (role, text) of every message of the last conversation, parts joined."""
    assert client.server.state.last_prompt() == []
    messages = [
        {"author": {"role": "system"}, "content": {"content_type": "text", "parts": ["Be {x}"]}},
        {"author": {"role": "user"}, "content": {"content_type": "text", "parts": ["a", "b\n"]}},
        {"author": {"role": "assistant"}, "content": {"content_type": "text", "parts": ["ok"]}},
        {
            "author": {"role": "user"},
            "content": {"content_type": "multimodal_text", "parts": [{"asset": 1}, "see ✓"]},
        },
    ]
    client.converse("ignored", v1=True, extra={"messages": messages})
    expected = [("system", "Be {x}"), ("user", "a\nb\n"), ("assistant", "ok"), ("user", "see ✓")]
    assert client.server.state.last_prompt() == expected
    got = client.request("GET", "/_sim/last_prompt").json()
    as_json = [{"role": r, "text": t} for r, t in expected]
    assert got == {"messages": as_json, "request_messages": as_json}
    client.converse("second")
    assert client.server.state.last_prompt() == [("user", "second")]


def test_http_script_endpoints(client: Client) -> None:
    """POST /_sim/script queues (400 on bad input), GET lists, the send uses it."""
    posted = client.request(
        "POST",
        "/_sim/script",
        {"reply": "x\ny", "chunks": ["x", "\ny"], "reasoning": "r", "finish": "max_tokens"},
    )
    item = {
        "reply": "x\ny",
        "reasoning": "r",
        "chunks": ["x", "\ny"],
        "model_slug": None,
        "finish": "max_tokens",
    }
    assert posted.status == 200 and posted.json() == {"queued": [item]}
    client.request("POST", "/_sim/script", {"reply": "z"})
    listed = client.request("GET", "/_sim/script").json()["queued"]
    second = {**item, "reply": "z", "reasoning": None, "chunks": None, "finish": "stop"}
    assert listed == [item, second]
    for bad in (
        {"reply": "ab", "chunks": ["a"]},
        {"reply": "a", "finish": "length"},
        {"reply": 1},
        {"reply": "a", "chunks": "a"},
        {"reply": "a", "chunks": [1]},
        {"reply": "a", "colour": "red"},
        [],
    ):
        assert client.request("POST", "/_sim/script", bad).status == 400, bad
    reply = client.converse("hi", v1=True)
    assert _v1_steps(reply.body) == ["x", "\ny"] and _v1_steps(reply.body, THOUGHT) == ["r"]
    assert len(client.request("GET", "/_sim/script").json()["queued"]) == 1


def test_anonymous_send_takes_a_script(client: Client) -> None:
    """The anonymous conversation path takes scripts too."""
    client.server.state.script("anon answer")
    hdrs = client.sentinel(prefix="/backend-anon")
    body = conversation_body("hi")
    reply = client.request("POST", "/backend-anon/conversation", body, hdrs)
    assert _answer(reply.body, False) == "anon answer"


def test_script_rejects_inconsistent_input(client: Client) -> None:
    """state.script raises ValueError for chunks that do not add up, bad finish, lone surrogates."""
    state = client.server.state
    with pytest.raises(ValueError):
        state.script("abc", chunks=["ab"])
    with pytest.raises(ValueError):
        state.script("abc", finish="length")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        state.script("\ud800")
    assert not state.scripts
