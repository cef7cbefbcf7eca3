"""The conversation decoder: raw ChatGPT SSE bytes (both formats) to typed events."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from chat2api.protocol.errors import (
    InvalidDelta,
    MalformedEvent,
    StreamTruncated,
    UnsupportedEncoding,
)
from chat2api.protocol.events import (
    Event,
    Finished,
    Metadata,
    Moderated,
    ReasoningDelta,
    StreamFailed,
    TextDelta,
)
from chat2api.protocol.stream import ConversationDecoder, decode_stream

STREAMS = Path(__file__).resolve().parents[2] / "fixtures" / "streams"

CONV = "6a3523d9-cad4-83ec-bdcc-21f12f7d807b"
ASST = "e4f1a9c2-5b3d-4c6e-8f70-1a2b3c4d5e6f"
CONV_ONLY = Metadata(CONV, None, None)

EXPECTED: dict[str, list[Event]] = {
    "legacy_basic": [
        CONV_ONLY,
        Metadata(CONV, ASST, "gpt-4o"),
        TextDelta("Hi"),
        TextDelta(" there!"),
        Finished("stop"),
    ],
    "v1_basic": [
        CONV_ONLY,
        Metadata(CONV, ASST, "gpt-5-3"),
        TextDelta("Hi"),
        TextDelta(" there"),
        TextDelta("!"),
        TextDelta(" How can I help?"),
        Finished("stop"),
    ],
    "v1_reasoning": [
        CONV_ONLY,
        Metadata(CONV, None, "gpt-5-thinking"),
        ReasoningDelta("The user wants"),
        ReasoningDelta(" a short greeting."),
        ReasoningDelta("\n\nKeep it"),
        ReasoningDelta(" friendly."),
        Metadata(CONV, ASST, "gpt-5-thinking"),
        TextDelta("Hello"),
        TextDelta("! 👋"),
        TextDelta(" Nice to meet you."),
        Metadata(CONV, ASST, "gpt-5-2-thinking"),
        Finished("stop"),
    ],
    "legacy_reasoning": [
        CONV_ONLY,
        ReasoningDelta("**Adding numbers**"),
        ReasoningDelta("\n\nTwo plus two"),
        ReasoningDelta(" is four."),
        Metadata(CONV, "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d", "o1-preview"),
        TextDelta("2 + 2"),
        TextDelta(" = 4."),
        Finished("stop"),
    ],
    "v1_echo": [
        CONV_ONLY,
        Metadata(CONV, "8f9e0d1c-2b3a-4f5e-8d7c-6b5a4f3e2d1c", "gpt-5-3"),
        TextDelta("Bye"),
        TextDelta(" for now."),
        Finished("stop"),
    ],
    "legacy_error": [
        CONV_ONLY,
        Metadata(CONV, ASST, "gpt-4o"),
        TextDelta("Hel"),
        StreamFailed(
            "An error occurred. Either the engine you requested does not exist or there was "
            "another issue processing your request."
        ),
    ],
    "v1_content_filter": [
        CONV_ONLY,
        Metadata(CONV, ASST, "gpt-5-3"),
        TextDelta("I can"),
        StreamFailed("upstream error: content_filter", "content_filter"),
    ],
    "v1_moderation": [CONV_ONLY, Moderated(blocked=True)],
    "legacy_max_tokens": [
        CONV_ONLY,
        Metadata(CONV, ASST, "gpt-4o"),
        TextDelta("1, 2, 3"),
        TextDelta(", 4, 5, 6"),
        TextDelta(", 7"),
        Finished("max_tokens"),
    ],
}

TRUNCATED_BEFORE_CLOSE: list[Event] = [
    CONV_ONLY,
    Metadata(CONV, ASST, "gpt-5-3"),
    TextDelta("Once upon"),
    TextDelta(" a time"),
]


def fixture_bytes(name: str) -> bytes:
    return (STREAMS / f"{name}.sse").read_bytes()


def feed_all(body: bytes, *, bytewise: bool) -> tuple[ConversationDecoder, list[Event]]:
    decoder = ConversationDecoder()
    events: list[Event] = []
    if bytewise:
        for i in range(len(body)):
            events += decoder.feed(body[i : i + 1])
    else:
        events += decoder.feed(body)
    return decoder, events


def decode_text(body: str) -> list[Event]:
    return decode_stream(body.encode())


def sse_data(obj: object) -> str:
    return f"data: {json.dumps(obj)}\n\n"


def sse_delta(obj: object) -> str:
    return f"event: delta\ndata: {json.dumps(obj)}\n\n"


METADATA_MERGE = {"p": "/message/metadata", "o": "append", "v": {}}
V1_HEAD = 'event: delta_encoding\ndata: "v1"\n\n'
END = 'data: {"type": "message_stream_complete", "conversation_id": "c"}\n\ndata: [DONE]\n\n'


def message(
    text: str = "",
    *,
    mid: str = "a1",
    role: str = "assistant",
    status: str = "in_progress",
    end_turn: bool | None = None,
    content: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "id": mid,
        "author": {"role": role, "name": None, "metadata": {}},
        "content": content or {"content_type": "text", "parts": [text]},
        "status": status,
        "end_turn": end_turn,
        "metadata": extra.pop("metadata", {"model_slug": "gpt-5"}),
        "recipient": "all",
        "channel": None,
    }
    msg.update(extra)
    return msg


def snapshot(msg: dict[str, Any]) -> str:
    return sse_data({"message": msg, "conversation_id": "c", "error": None})


def add(msg: dict[str, Any], c: int) -> str:
    return sse_delta(
        {"p": "", "o": "add", "v": {"message": msg, "conversation_id": "c", "error": None}, "c": c}
    )


def texts(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def reasoning(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, ReasoningDelta))


# -- fixtures ---------------------------------------------------------------


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_events(name: str, bytewise: bool) -> None:
    """Each fixture decodes to exactly its expected events, whole and one byte at a time."""
    decoder, events = feed_all(fixture_bytes(name), bytewise=bytewise)
    events += decoder.close()
    assert events == EXPECTED[name]


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_truncated_fixture_raises_on_close(bytewise: bool) -> None:
    """A stream cut mid-answer yields its text, then close() raises StreamTruncated."""
    decoder, events = feed_all(fixture_bytes("v1_truncated"), bytewise=bytewise)
    assert events == TRUNCATED_BEFORE_CLOSE
    assert not decoder.done
    with pytest.raises(StreamTruncated):
        decoder.close()


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("legacy_basic", "legacy"), ("v1_basic", "v1"), ("legacy_reasoning", "legacy")],
)
def test_format_is_detected_and_done_is_set(name: str, fmt: str) -> None:
    """`format` follows the delta_encoding record and `done` is set by the end markers."""
    decoder, _ = feed_all(fixture_bytes(name), bytewise=False)
    assert decoder.format == fmt
    assert decoder.done


def test_spec_v1_example_text() -> None:
    """The spec's v1 example reassembles to its documented answer text."""
    assert texts(decode_stream(fixture_bytes("v1_basic"))) == "Hi there! How can I help?"


# -- delta v1 through the decoder ---------------------------------------------


def test_carry_forward_and_bare_v_after_patch() -> None:
    """Bare `v` records append to the text cursor, also right after a patch."""
    body = (
        V1_HEAD
        + add(message(), 0)
        + sse_delta({"p": "/message/content/parts/0", "o": "append", "v": "a"})
        + sse_delta({"v": "b"})
        + sse_delta(
            {"p": "", "o": "patch", "v": [{"p": "/message/metadata", "o": "append", "v": {}}]}
        )
        + sse_delta({"v": "c"})
        + sse_delta(
            {
                "v": [
                    {"p": "/message/content/parts/0", "o": "append", "v": "d"},
                    {"p": "/message/status", "o": "replace", "v": "finished_successfully"},
                    {"p": "/message/end_turn", "o": "replace", "v": True},
                ]
            }
        )
        + END
    )
    events = decode_text(body)
    assert [e for e in events if isinstance(e, TextDelta)] == [
        TextDelta("a"),
        TextDelta("b"),
        TextDelta("c"),
        TextDelta("d"),
    ]
    assert events[-1] == Finished("stop")


def test_metadata_append_merge_sets_finish_type() -> None:
    """finish_details merged into metadata by a later record decide the finish type."""
    body = (
        V1_HEAD
        + add(message(), 0)
        + sse_delta({"p": "/message/content/parts/0", "o": "append", "v": "cut"})
        + sse_delta({"p": "/message/status", "o": "replace", "v": "finished_successfully"})
        + sse_delta({"p": "/message/end_turn", "o": "replace", "v": True})
        + sse_delta(
            {
                "p": "/message/metadata",
                "o": "append",
                "v": {"finish_details": {"type": "max_tokens"}, "is_complete": True},
            }
        )
        + END
    )
    events = decode_text(body)
    assert events[-1] == Finished("max_tokens")
    assert events.count(Finished("max_tokens")) == 1


def test_finish_type_unknown_maps_to_stop_and_interrupted_kept() -> None:
    """An unknown finish_details.type is "stop"; "interrupted" is kept."""
    for kind, expected in [("weird", "stop"), ("interrupted", "interrupted"), (None, "stop")]:
        msg = message(
            "x",
            status="finished_successfully",
            end_turn=True,
            metadata={"finish_details": {"type": kind}},
        )
        body = snapshot(message("")) + snapshot(msg) + "data: [DONE]\n\n"
        assert decode_text(body)[-1] == Finished(expected)  # type: ignore[arg-type]


def test_unquoted_encoding_marker_is_accepted() -> None:
    """`data: v1` without quotes also switches to delta mode."""
    decoder = ConversationDecoder()
    decoder.feed(b"event: delta_encoding\ndata: v1\n\n")
    assert decoder.format == "v1"


def test_unknown_encoding_raises() -> None:
    """A delta_encoding other than v1 raises UnsupportedEncoding."""
    with pytest.raises(UnsupportedEncoding):
        ConversationDecoder().feed(b'event: delta_encoding\ndata: "v2"\n\n')


def test_escaped_path_through_decoder() -> None:
    """JSON-Pointer escapes work in ops applied by the decoder."""
    body = (
        V1_HEAD
        + add(message(metadata={"a/b": {"c~d": ""}}), 0)
        + sse_delta({"p": "/message/metadata/a~1b/c~0d", "o": "append", "v": "x"})
        + sse_delta({"p": "/message/content/parts/0", "o": "append", "v": "ok"})
    )
    decoder = ConversationDecoder()
    assert TextDelta("ok") in decoder.feed(body.encode())


def test_invalid_delta_raises_malformed_event() -> None:
    """An op that cannot be applied surfaces as InvalidDelta (a MalformedEvent)."""
    body = V1_HEAD + add(message(), 0) + sse_delta({"p": "/nope/x", "o": "replace", "v": 1})
    with pytest.raises(InvalidDelta):
        decode_text(body)


# -- answer selection ---------------------------------------------------------


def test_legacy_echo_of_previous_assistant_message_is_ignored() -> None:
    """An assistant message first seen already finished is history and emits nothing."""
    old = message("Old answer.", mid="old", status="finished_successfully", end_turn=True)
    body = (
        snapshot(message("Q", mid="u", role="user", status="finished_successfully"))
        + snapshot(old)
        + snapshot(message("", mid="new"))
        + snapshot(message("New", mid="new"))
        + snapshot(message("New!", mid="new", status="finished_successfully", end_turn=True))
        + "data: [DONE]\n\n"
    )
    events = decode_text(body)
    assert texts(events) == "New!"
    assert Metadata("c", "new", "gpt-5") in events


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"recipient": "python"}, id="tool-call"),
        pytest.param({"channel": "commentary"}, id="commentary"),
        pytest.param({"metadata": {"is_visually_hidden_from_conversation": True}}, id="hidden"),
        pytest.param({"metadata": {"is_thinking_preamble_message": True}}, id="preamble"),
        pytest.param(
            {"content": {"content_type": "code", "language": "python", "text": "x"}}, id="code"
        ),
        pytest.param({"role": "system"}, id="system"),
    ],
)
def test_non_answer_messages_emit_no_text(changes: dict[str, Any]) -> None:
    """Tool calls, commentary, hidden, preamble, code and system messages are not the answer."""
    other = message("not shown", mid="other", **changes)
    answer = message("shown", mid="ans", status="finished_successfully", end_turn=True)
    body = snapshot(other) + snapshot(message("", mid="ans")) + snapshot(answer)
    events = decode_text(body + "data: [DONE]\n\n")
    assert texts(events) == "shown"
    assert events[-1] == Finished("stop")


def test_multimodal_answer_uses_string_parts_only() -> None:
    """For multimodal_text answers only the string parts are text."""
    pointer = {"content_type": "image_asset_pointer", "asset_pointer": "file-service://x"}
    content = {"content_type": "multimodal_text", "parts": [pointer, "Here it is."]}
    body = snapshot(message(mid="m", content={"content_type": "multimodal_text", "parts": []}))
    body += snapshot(
        message(mid="m", content=content, status="finished_successfully", end_turn=True)
    )
    assert texts(decode_text(body + END)) == "Here it is."


def test_tool_call_end_turn_false_does_not_finish() -> None:
    """An answer-like message finished with end_turn false is not the end of the turn."""
    body = snapshot(message("")) + snapshot(
        message("Let me check.", status="finished_successfully", end_turn=False)
    )
    decoder = ConversationDecoder()
    events = decoder.feed((body + "data: [DONE]\n\n").encode())
    assert texts(events) == "Let me check."
    assert not any(isinstance(e, Finished) for e in events)
    with pytest.raises(StreamTruncated):
        decoder.close()


def test_finished_waits_for_end_marker_then_close_emits_it() -> None:
    """Without message_stream_complete or [DONE], close() emits the pending Finished."""
    decoder = ConversationDecoder()
    body = snapshot(message("")) + snapshot(
        message("Hi", status="finished_successfully", end_turn=True)
    )
    events = decoder.feed(body.encode())
    assert not any(isinstance(e, Finished) for e in events)
    assert not decoder.done
    assert decoder.close() == [Finished("stop")]


def test_records_after_done_are_ignored() -> None:
    """Nothing after data: [DONE] is decoded, not even garbage."""
    body = snapshot(message("")) + snapshot(
        message("Hi", status="finished_successfully", end_turn=True)
    )
    events = decode_text(body + "data: [DONE]\n\ndata: {not json\n\n")
    assert events[-1] == Finished("stop")


def test_pings_and_unknown_events_are_ignored() -> None:
    """Empty data, comments and unknown event names produce nothing."""
    decoder = ConversationDecoder()
    body = b": ping\n\ndata:\n\ndata:   \n\nevent: weird\ndata: {nope\n\nevent: ping\ndata: 1\n\n"
    assert decoder.feed(body) == []


def test_control_records_without_interest_are_ignored() -> None:
    """title_generation, markers, detail metadata and resume tokens emit nothing new."""
    records = [
        {"type": "title_generation", "title": "T", "conversation_id": "c"},
        {"type": "message_marker", "message_id": "x", "marker": "last_token", "event": "last"},
        {"type": "conversation_detail_metadata", "limits_progress": [], "conversation_id": "c"},
        {"type": "resume_conversation_token", "token": "eyJ", "conversation_id": "c"},
        {"type": "url_moderation", "conversation_id": "c"},
    ]
    decoder = ConversationDecoder()
    assert decoder.feed("".join(map(sse_data, records)).encode()) == [Metadata("c")]


# -- reasoning ---------------------------------------------------------------


def thoughts(*items: tuple[str, str]) -> dict[str, Any]:
    return {
        "content_type": "thoughts",
        "thoughts": [
            {"summary": s, "content": c, "chunks": [], "finished": False} for s, c in items
        ],
    }


def test_legacy_thoughts_snapshots_render_content_only() -> None:
    """Thoughts in legacy snapshots give the same rendering: contents joined by a blank line."""
    body = (
        snapshot(message(mid="t", content=thoughts(("Plan", "")), channel="analysis"))
        + snapshot(message(mid="t", content=thoughts(("Plan", "Step one")), channel="analysis"))
        + snapshot(
            message(
                mid="t",
                content=thoughts(("Plan", "Step one."), ("Next", "Two")),
                channel="analysis",
            )
        )
        + snapshot(
            message(
                mid="r",
                content={"content_type": "reasoning_recap", "content": "Thought for 3s"},
                status="finished_successfully",
            )
        )
        + snapshot(message("", mid="a", channel="final"))
        + snapshot(
            message("Done", mid="a", channel="final", status="finished_successfully", end_turn=True)
        )
    )
    events = decode_text(body + END)
    assert [e for e in events if isinstance(e, ReasoningDelta)] == [
        ReasoningDelta("Step one"),
        ReasoningDelta(".\n\nTwo"),
    ]
    assert texts(events) == "Done"


def test_separate_reasoning_messages_are_separated() -> None:
    """Two thoughts messages (e.g. around a tool call) are joined with a blank line."""
    body = (
        V1_HEAD
        + add(message(mid="t1", content=thoughts(("A", "first")), channel="analysis"), 0)
        + add(message(mid="t2", content=thoughts(("B", "")), channel="analysis"), 1)
        + sse_delta({"p": "/message/content/thoughts/0/content", "o": "append", "v": "second"})
    )
    decoder = ConversationDecoder()
    assert reasoning(decoder.feed(body.encode())) == "first\n\nsecond"


def test_v1_thoughts_summary_append_emits_nothing() -> None:
    """Appends to a thought's summary are not rendered; its content is."""
    body = (
        V1_HEAD
        + add(message(mid="t", content=thoughts(("", "")), channel="analysis"), 0)
        + sse_delta({"p": "/message/content/thoughts/0/summary", "o": "append", "v": "Heading"})
        + sse_delta({"p": "/message/content/thoughts/0/content", "o": "append", "v": "Body"})
    )
    decoder = ConversationDecoder()
    assert [e for e in decoder.feed(body.encode()) if isinstance(e, ReasoningDelta)] == [
        ReasoningDelta("Body")
    ]


# -- metadata, errors, moderation ---------------------------------------------


def test_server_ste_resolved_slug_wins() -> None:
    """server_ste_metadata's resolved_model_slug overrides the message's model_slug."""
    ste = {
        "type": "server_ste_metadata",
        "metadata": {"model_slug": "a", "resolved_model_slug": "b"},
    }
    body = snapshot(message("", metadata={"model_slug": "m"})) + sse_data(ste)
    body += snapshot(message("x", metadata={"model_slug": "m"}))
    events = ConversationDecoder().feed(body.encode())
    metas = [e for e in events if isinstance(e, Metadata)]
    assert metas == [Metadata("c", "a1", "m"), Metadata("c", "a1", "b")]


def test_legacy_error_object_and_system_error_message() -> None:
    """An error object gives its message and code; a system_error message fails the stream."""
    failed = decode_text(
        sse_data({"message": None, "error": {"message": "boom", "code": "x"}}) + "data: [DONE]\n\n"
    )
    assert failed == [StreamFailed("boom", "x")]
    content = {"content_type": "system_error", "name": "tool_error", "text": "It broke."}
    body = snapshot(message(mid="e", content=content, status="finished_successfully"))
    events = decode_text(snapshot(message(mid="e", content=content)) + body + END)
    assert StreamFailed("It broke.", "tool_error") in events


def test_flagged_moderation_not_blocked() -> None:
    """A flagged but not blocked moderation record gives Moderated(blocked=False)."""
    record = {"type": "moderation", "moderation_response": {"flagged": True, "blocked": False}}
    assert ConversationDecoder().feed(sse_data(record).encode()) == [Moderated(blocked=False)]
    record["moderation_response"] = {"flagged": False, "blocked": False}
    assert ConversationDecoder().feed(sse_data(record).encode()) == []


def test_malformed_json_raises() -> None:
    """A data payload that is not JSON raises MalformedEvent, in either format."""
    with pytest.raises(MalformedEvent):
        ConversationDecoder().feed(b"data: {oops\n\n")
    with pytest.raises(MalformedEvent):
        ConversationDecoder().feed(b"event: delta\ndata: [1,\n\n")


def test_empty_stream_is_truncated() -> None:
    """A body with no answer at all is truncated."""
    decoder = ConversationDecoder()
    assert decoder.feed(b"") == []
    with pytest.raises(StreamTruncated):
        decoder.close()


def test_close_twice_returns_nothing() -> None:
    """close() is idempotent after a finished stream."""
    decoder = ConversationDecoder()
    decoder.feed(fixture_bytes("legacy_basic"))
    decoder.close()
    assert decoder.close() == []


# -- performance ---------------------------------------------------------------


def _answer_streams(words: int) -> dict[str, list[bytes]]:
    """An answer of ``words`` chunks in both formats (legacy: one growing snapshot each)."""
    legacy: list[bytes] = []
    text = ""
    for i in range(words):
        text += f"word{i} "
        legacy.append(snapshot(message(text, channel=None)).encode())
    legacy.append(snapshot(message(text, status="finished_successfully", end_turn=True)).encode())
    legacy.append(b"data: [DONE]\n\n")
    v1 = [V1_HEAD.encode(), add(message(channel="final"), 0).encode()]
    v1.append(sse_delta({"p": "/message/content/parts/0", "o": "append", "v": "w "}).encode())
    v1 += [sse_delta({"v": f"word{i} "}).encode() for i in range(words - 2)]
    patch = [
        {"p": "/message/status", "o": "replace", "v": "finished_successfully"},
        {"p": "/message/end_turn", "o": "replace", "v": True},
    ]
    v1 += [sse_delta({"v": patch}).encode(), END.encode()]
    return {"legacy": legacy, "v1": v1}


def _cpu_per_byte(chunks: list[bytes]) -> float:
    """The best of five CPU-time measurements of decoding ``chunks``, per input byte."""
    size = sum(len(chunk) for chunk in chunks)
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(5):
            decoder = ConversationDecoder()
            for chunk in chunks:
                decoder.feed(chunk)
            decoder.close()
        best = min(best, (time.process_time() - start) / 5)
    return best / size


@pytest.mark.parametrize("fmt", ["legacy", "v1"])
def test_decoding_cost_grows_with_the_input_not_faster(fmt: str) -> None:
    """Ten times the chunks costs about the same CPU per input byte, not ten times more.

    Compared within one run, so the machine's speed and load cancel out: a decoder
    that went back over what it had already read would cost ~10x more per byte here.
    """
    short, long = _answer_streams(50)[fmt], _answer_streams(500)[fmt]
    assert _cpu_per_byte(long) < 3 * _cpu_per_byte(short)


def test_echoed_turns_keep_no_state_and_their_late_ops_are_ignored() -> None:
    """The system and user echoes are released once read (only the answer keeps a root).

    An op that still arrives for an echo changes nothing and raises nothing.
    """
    done = {"status": "finished_successfully", "end_turn": True}
    body = (
        V1_HEAD
        + add(message(mid="s", role="system", status="finished_successfully"), 0)
        + add(message("Say hi", mid="u", role="user", status="finished_successfully"), 1)
        + add(message(), 2)
        + sse_delta({"p": "/message/content/parts/0", "o": "append", "v": "Hi", "c": 2})
        + sse_delta({"p": "/message/metadata", "o": "append", "v": {"x": 1}, "c": 1})
        + sse_delta({"p": "/message/content/parts/0", "o": "append", "v": "!", "c": 2})
        + sse_delta(
            {
                "p": "",
                "o": "patch",
                "c": 2,
                "v": [{"p": f"/message/{k}", "o": "replace", "v": v} for k, v in done.items()],
            }
        )
        + END
    )
    decoder = ConversationDecoder()
    events = decoder.feed(body.encode()) + decoder.close()
    assert texts(events) == "Hi!"
    assert events[-1] == Finished("stop")
    assert sorted(decoder._delta.roots) == [2]  # the echoes' roots were dropped


def _answer_stream(*middle: str) -> str:
    done = [
        {"p": "/message/status", "o": "replace", "v": "finished_successfully"},
        {"p": "/message/end_turn", "o": "replace", "v": True},
    ]
    return (
        V1_HEAD
        + add(message(), 0)
        + sse_delta({"p": "/message/content/parts/0", "o": "append", "v": "a"})
        + "".join(middle)
        + sse_delta({"p": "", "o": "patch", "v": done})
        + END
    )


def test_text_after_the_answer_is_hidden_is_not_emitted() -> None:
    """Plain text appends are taken fast only while the message still is the answer."""
    hidden = {"is_visually_hidden_from_conversation": True}
    body = _answer_stream(
        sse_delta({"v": "b"}),
        sse_delta({"p": "/message/metadata", "o": "append", "v": hidden}),
        sse_delta({"p": "/message/content/parts/0", "o": "append", "v": "c"}),
        sse_delta({"v": "d"}),
    )
    events = ConversationDecoder().feed(body.encode())  # a hidden message never ends it
    assert texts(events) == "ab"


def test_text_appends_after_a_second_part_take_the_full_reading() -> None:
    """With two parts the answer is their concatenation, as before any shortcut."""
    body = _answer_stream(
        sse_delta({"p": "/message/content/parts/1", "o": "add", "v": "X"}),
        sse_delta({"p": "/message/content/parts/1", "o": "append", "v": "Y"}),
        sse_delta({"v": "Z"}),
    )
    events = decode_text(body)
    assert texts(events) == "aXYZ"
