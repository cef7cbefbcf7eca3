"""Tool traffic, images, citations and private-use markers in the decoded stream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat2api.protocol.errors import StreamTruncated
from chat2api.protocol.events import (
    Citation,
    CodeRun,
    Event,
    ExecutionOutput,
    Finished,
    ImageGenerated,
    Metadata,
    TextDelta,
)
from chat2api.protocol.markers import MAX_SPAN, MarkerFilter, strip_markers
from chat2api.protocol.stream import ConversationDecoder, decode_stream

STREAMS = Path(__file__).resolve().parents[2] / "fixtures" / "streams"

CONV = "6a3523d9-cad4-83ec-bdcc-21f12f7d807b"
ANS = "e4f1a9c2-5b3d-4c6e-8f70-1a2b3c4d5e6f"
TOOL = "7001a001-2222-4b3c-9d4e-5f6a7b8c9d0e"
CONV_ONLY = Metadata(CONV, None, None)

PY = (
    "total = sum(range(1, 101))\nprint(total)\n\nimport matplotlib.pyplot as plt\n"
    "plt.plot([1, 2, 3], [1, 4, 9])\nplt.savefig('/mnt/data/chart.png')\n"
)
FOX = "A red fox sitting in fresh snow"
DALLE = ImageGenerated(
    "file-service://file-AbC123xyz", 1024, 1024, False, TOOL, f"{FOX}, watercolor"
)
FOX_TEXT = [TextDelta("Here is"), TextDelta(" your watercolor fox"), TextDelta(" in the snow.")]
SANDBOX_TEXT = [
    TextDelta("The sum is 5050."),
    TextDelta(" [Download the chart](sandbox:/mnt"),
    TextDelta("/data/chart.png)"),
]
WIKI = Citation("https://en.wikipedia.org/wiki/Paris", "Paris - Wikipedia")
INSEE = Citation("https://www.insee.fr/en/statistiques/paris-population", "Population of Paris")
REUTERS = Citation(
    "https://www.reuters.com/world/europe/paris-population-2025/", "Paris population falls again"
)

EXPECTED: dict[str, list[Event]] = {
    "legacy_dalle": [
        CONV_ONLY,
        Metadata(CONV, None, "gpt-4o"),
        DALLE,
        Metadata(CONV, ANS, "gpt-4o"),
        *FOX_TEXT,
        Finished("stop"),
    ],
    "v1_dalle": [
        CONV_ONLY,
        Metadata(CONV, None, "gpt-4o"),
        DALLE,
        Metadata(CONV, ANS, "gpt-4o"),
        *FOX_TEXT,
        Finished("stop"),
    ],
    "v1_image_async": [
        CONV_ONLY,
        Metadata(CONV, None, "gpt-5-3"),
        ImageGenerated(
            "sediment://file_00000000a1b2c3d4e5f6a7b8c9d0e1f2",
            1024,
            1536,
            True,
            TOOL,
            f"{FOX}, photorealistic",
        ),
    ],
    "legacy_image_async": [
        CONV_ONLY,
        Metadata(CONV, None, "gpt-4o"),
        ImageGenerated("", None, None, True, TOOL, f"{FOX}, photorealistic"),
    ],
    "legacy_code_interpreter": [
        CONV_ONLY,
        Metadata(CONV, None, "gpt-4o"),
        CodeRun("python", PY),
        ExecutionOutput("5050\n"),
        Metadata(CONV, ANS, "gpt-4o"),
        *SANDBOX_TEXT,
        Finished("stop"),
    ],
    "v1_code_interpreter": [
        CONV_ONLY,
        Metadata(CONV, None, "gpt-5-3"),
        CodeRun("python", PY),
        ExecutionOutput("5050\n"),
        Metadata(CONV, ANS, "gpt-5-3"),
        *SANDBOX_TEXT,
        Finished("stop"),
    ],
    "legacy_citations": [
        CONV_ONLY,
        Metadata(CONV, ANS, "gpt-4o"),
        TextDelta("Paris is the capital of France. "),
        TextDelta(" Its population is about 2.1 million. "),
        WIKI,
        INSEE,
        REUTERS,
        Finished("stop"),
    ],
    "v1_citations": [
        CONV_ONLY,
        Metadata(CONV, ANS, "gpt-5-3"),
        TextDelta("Paris is"),
        TextDelta(" the capital of France. "),
        WIKI,
        TextDelta(" "),
        TextDelta("Its population is about 2.1 million. "),
        INSEE,
        REUTERS,
        Finished("stop"),
    ],
}


def fixture_events(name: str, *, bytewise: bool) -> list[Event]:
    body = (STREAMS / f"{name}.sse").read_bytes()
    decoder = ConversationDecoder()
    events: list[Event] = []
    if bytewise:
        for i in range(len(body)):
            events += decoder.feed(body[i : i + 1])
    else:
        events += decoder.feed(body)
    return events + decoder.close()


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_events(name: str, bytewise: bool) -> None:
    """Each tool/image/citation fixture decodes to exactly its events, whole and bytewise."""
    assert fixture_events(name, bytewise=bytewise) == EXPECTED[name]


def test_sandbox_link_is_left_in_the_text() -> None:
    """The decoder does not rewrite sandbox: links (the converter does)."""
    events = fixture_events("v1_code_interpreter", bytewise=False)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text.endswith("(sandbox:/mnt/data/chart.png)")


# -- helpers ------------------------------------------------------------------

V1_HEAD = 'event: delta_encoding\ndata: "v1"\n\n'
END = 'data: {"type": "message_stream_complete", "conversation_id": "c"}\n\ndata: [DONE]\n\n'
COMPLETE = 'data: {"type": "message_stream_complete", "conversation_id": "c"}\n\n'


def sse_data(obj: object) -> str:
    return f"data: {json.dumps(obj)}\n\n"


def sse_delta(obj: object) -> str:
    return f"event: delta\ndata: {json.dumps(obj)}\n\n"


def message(
    text: str = "",
    *,
    mid: str = "a1",
    role: str = "assistant",
    status: str = "in_progress",
    end_turn: bool | None = None,
    content: dict[str, Any] | None = None,
    recipient: str = "all",
    **extra: Any,
) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "id": mid,
        "author": {"role": role, "name": None, "metadata": {}},
        "content": content or {"content_type": "text", "parts": [text]},
        "status": status,
        "end_turn": end_turn,
        "metadata": extra.pop("metadata", {"model_slug": "gpt-5"}),
        "recipient": recipient,
        "channel": None,
    }
    msg.update(extra)
    return msg


def code(text: str, language: str = "python") -> dict[str, Any]:
    return {"content_type": "code", "language": language, "text": text}


ASYNC = {"async_task_type": "image_gen", "image_gen_title": "Fox"}


def pointer(ref: str, **fields: Any) -> dict[str, Any]:
    return {"content_type": "image_asset_pointer", "asset_pointer": ref, **fields}


def images(*parts: Any) -> dict[str, Any]:
    return {"content_type": "multimodal_text", "parts": list(parts)}


def snapshot(msg: dict[str, Any]) -> str:
    return sse_data({"message": msg, "conversation_id": "c", "error": None})


def add(msg: dict[str, Any], c: int) -> str:
    return sse_delta(
        {"p": "", "o": "add", "v": {"message": msg, "conversation_id": "c", "error": None}, "c": c}
    )


def answer(text: str = "Done.", mid: str = "ans", **extra: Any) -> str:
    """An in-progress then finished legacy answer."""
    return snapshot(message("", mid=mid, **extra)) + snapshot(
        message(text, mid=mid, status="finished_successfully", end_turn=True, **extra)
    )


def of(kind: type, events: list[Event]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def texts(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# -- CodeRun -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [
        ("python", [CodeRun("python", "print(1)")]),
        ("python_user_visible", [CodeRun("python", "print(1)")]),
        ("dalle.text2im", []),
        ("t2uay3k.sj1i4kz", []),
        ("web.run", []),
        ("all", []),
    ],
)
def test_code_run_only_for_the_code_interpreter(recipient: str, expected: list[Event]) -> None:
    """python code is a CodeRun; image-tool JSON, web.run queries and recipient all are not."""
    body = snapshot(message(mid="k", content=code("print"), recipient=recipient)) + snapshot(
        message(
            mid="k",
            content=code("print(1)"),
            recipient=recipient,
            status="finished_successfully",
            end_turn=False,
        )
    )
    events = decode_stream((body + answer() + END).encode())
    assert of(CodeRun, events) == expected
    assert texts(events) == "Done."


@pytest.mark.parametrize(
    ("language", "shown"), [("unknown", "python"), ("", "python"), ("py", "py")]
)
def test_code_run_language_falls_back_to_recipient(language: str, shown: str) -> None:
    """content.language names the block; missing, empty or "unknown" falls back to the recipient."""
    body = snapshot(
        message(
            mid="k",
            content=code("x = 1", language),
            recipient="python",
            status="in_progress",
        )
    ) + snapshot(
        message(
            mid="k",
            content=code("x = 1", language),
            recipient="python",
            status="finished_successfully",
        )
    )
    assert of(CodeRun, decode_stream((body + answer() + END).encode())) == [CodeRun(shown, "x = 1")]


def test_unfinished_code_is_emitted_when_the_next_message_starts() -> None:
    """A code message that never finishes is complete once another message starts."""
    body = (
        V1_HEAD
        + add(message(mid="k", content=code(""), recipient="python"), 0)
        + sse_delta({"p": "/message/content/text", "o": "append", "v": "print("})
        + sse_delta({"v": "2)"})
    )
    decoder = ConversationDecoder()
    assert of(CodeRun, decoder.feed(body.encode())) == []
    out = message(mid="x", role="tool", content={"content_type": "execution_output", "text": "2\n"})
    events = decoder.feed(add(out, 1).encode())
    assert events == [CodeRun("python", "print(2)")]
    finished = sse_delta({"p": "/message/status", "o": "replace", "v": "finished_successfully"})
    assert decoder.feed(finished.encode()) == [ExecutionOutput("2\n")]


def test_unfinished_code_is_emitted_at_the_end_of_the_stream() -> None:
    """A code message still open at the end marker is emitted then, once."""
    decoder = ConversationDecoder()
    body = snapshot(message(mid="k", content=code("1 + 1"), recipient="python"))
    assert decoder.feed(body.encode()) == [Metadata("c", None, "gpt-5")]
    assert decoder.feed(END.encode()) == [CodeRun("python", "1 + 1")]
    with pytest.raises(StreamTruncated):
        decoder.close()


def test_code_run_and_output_are_emitted_once() -> None:
    """Snapshots repeated after finishing produce no second CodeRun / ExecutionOutput."""
    done = message(mid="k", content=code("1"), recipient="python", status="finished_successfully")
    out = message(
        mid="x",
        role="tool",
        content={"content_type": "execution_output", "text": "1"},
        status="finished_successfully",
    )
    body = (
        snapshot(message(mid="k", content=code(""), recipient="python"))
        + snapshot(done)
        + snapshot(done)
        + snapshot(out)
        + snapshot(out)
        + answer()
        + END
    )
    events = decode_stream(body.encode())
    assert of(CodeRun, events) == [CodeRun("python", "1")]
    assert of(ExecutionOutput, events) == [ExecutionOutput("1")]


def test_execution_output_waits_for_finish() -> None:
    """An execution_output message still in progress emits nothing."""
    decoder = ConversationDecoder()
    body = snapshot(message(mid="k", content=code("1"), recipient="python")) + snapshot(
        message(mid="x", role="tool", content={"content_type": "execution_output", "text": "1"})
    )
    assert of(ExecutionOutput, decoder.feed(body.encode())) == []


def test_history_tool_messages_before_the_turn_are_ignored() -> None:
    """Earlier turns re-sent before this turn (code, output, images) produce no events."""
    history = [
        message("Q", mid="u", role="user", status="finished_successfully"),
        message(
            mid="k0", content=code("old()"), recipient="python", status="finished_successfully"
        ),
        message(
            mid="x0",
            role="tool",
            content={"content_type": "execution_output", "text": "old"},
            status="finished_successfully",
        ),
        message(
            mid="i0",
            role="tool",
            content=images(pointer("file-service://old")),
            status="finished_successfully",
        ),
    ]
    body = "".join(map(snapshot, history)) + answer("New.") + END
    events = decode_stream(body.encode())
    assert of(CodeRun, events) == of(ExecutionOutput, events) == of(ImageGenerated, events) == []
    assert texts(events) == "New."


# -- ImageGenerated ------------------------------------------------------------


def test_user_input_images_are_never_outputs() -> None:
    """Pointers in the user's own message are inputs."""
    user = message(
        mid="u",
        role="user",
        content=images(pointer("sediment://file_in"), "What is this?"),
        status="finished_successfully",
    )
    events = decode_stream((snapshot(user) + answer() + END).encode())
    assert of(ImageGenerated, events) == []


def test_assistant_multimodal_answer_image_and_dedup() -> None:
    """An assistant multimodal answer's pointer is an output; each pointer is reported once."""
    part = pointer("file-service://file-1", width=512, height=256)
    content = images(part, "Here it is.")
    body = (
        snapshot(message(mid="m", content=images()))
        + snapshot(message(mid="m", content=content))
        + snapshot(message(mid="m", content=content, status="finished_successfully", end_turn=True))
        + snapshot(
            message(
                mid="t",
                role="tool",
                content=images(part),
                status="finished_successfully",
            )
        )
        + END
    )
    events = decode_stream(body.encode())
    assert of(ImageGenerated, events) == [
        ImageGenerated("file-service://file-1", 512, 256, False, "m")
    ]
    assert texts(events) == "Here it is."


def test_finished_image_takes_sizes_from_generation_metadata() -> None:
    """picture_v2 parts without top-level sizes use metadata.generation once finished."""
    part = pointer("sediment://file_9", metadata={"generation": {"width": 1536, "height": 1024}})
    tool = message(mid="t", role="tool", content=images(part), metadata=ASYNC)
    body = snapshot(tool) + snapshot({**tool, "status": "finished_successfully"}) + answer() + END
    assert of(ImageGenerated, decode_stream(body.encode())) == [
        ImageGenerated("sediment://file_9", 1536, 1024, False, "t")
    ]


def test_pending_image_is_reported_at_the_end_marker_once() -> None:
    """An image_gen tool message still running at message_stream_complete is pending."""
    part = pointer("sediment://file_p", metadata={"generation": {"width": 1024, "height": 100}})
    tool = message(mid="t", role="tool", content=images(part), metadata=ASYNC)
    decoder = ConversationDecoder()
    assert of(ImageGenerated, decoder.feed(snapshot(tool).encode())) == []
    pending = ImageGenerated("sediment://file_p", None, None, True, "t")
    assert decoder.feed(COMPLETE.encode()) == [pending]
    # the same message finishing later does not report the pointer twice
    done = snapshot({**tool, "status": "finished_successfully"})
    assert of(ImageGenerated, decoder.feed((done + "data: [DONE]\n\n").encode())) == []
    assert decoder.close() == []


def test_pending_image_from_close_without_end_marker() -> None:
    """Without an end marker, close() reports the pending image and does not raise."""
    tool = message(mid="t", role="tool", content=images(), metadata=ASYNC)
    decoder = ConversationDecoder()
    decoder.feed(snapshot(tool).encode())
    assert decoder.close() == [ImageGenerated("", None, None, True, "t")]


def test_unfinished_non_async_tool_image_is_not_reported() -> None:
    """A tool image message without async_task_type that never finishes is just truncated."""
    tool = message(mid="t", role="tool", content=images(pointer("file-service://f")))
    decoder = ConversationDecoder()
    events = decoder.feed((snapshot(tool) + END).encode())
    assert of(ImageGenerated, events) == []
    with pytest.raises(StreamTruncated):
        decoder.close()


def test_image_prompt_from_the_tool_call_else_the_dalle_metadata() -> None:
    """prompt: the JSON the model sent the image tool; without it, metadata.dalle.prompt."""
    code = {"content_type": "code", "language": "json", "text": '{"prompt": "a kite"}'}
    asked = message(mid="c", content=code, recipient="t2uay3k.sj1i4kz")
    tool = message(mid="t", role="tool", content=images(), metadata=ASYNC)
    done = {**asked, "status": "finished_successfully"}
    body = snapshot(asked) + snapshot(done) + snapshot(tool) + END
    assert of(ImageGenerated, decode_stream(body.encode())) == [
        ImageGenerated("", None, None, True, "t", "a kite")
    ]
    part = pointer(
        "file-service://file-d", width=8, height=8, metadata={"dalle": {"prompt": "owl"}}
    )
    done = message(mid="d", role="tool", content=images(part), status="finished_successfully")
    body = snapshot({**done, "status": "in_progress"}) + snapshot(done) + answer() + END
    assert of(ImageGenerated, decode_stream(body.encode())) == [
        ImageGenerated("file-service://file-d", 8, 8, False, "d", "owl")
    ]


def test_pending_image_comes_before_finished() -> None:
    """When the answer also finished, the pending image precedes Finished."""
    tool = message(mid="t", role="tool", content=images(), metadata=ASYNC)
    events = decode_stream((snapshot(tool) + answer("Working on it.") + END).encode())
    assert events[-2:] == [ImageGenerated("", None, None, True, "t"), Finished("stop")]


# -- Citation --------------------------------------------------------------------


def cite(url: str | None, title: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"type": "webpage", "title": title, "text": "..."}
    if url is not None:
        meta["url"] = url
    return {"start_ix": 0, "end_ix": 1, "citation_format_type": "tether_og", "metadata": meta}


def answer_with(metadata: dict[str, Any], text: str = "A.", status: str = "in_progress") -> str:
    return snapshot(
        message(
            text,
            mid="ans",
            metadata={"model_slug": "gpt-5", **metadata},
            status=status,
            end_turn=True if status != "in_progress" else None,
        )
    )


def test_legacy_citations_full_list_emits_only_new_urls() -> None:
    """Legacy snapshots resend the whole list: only new URLs become Citations."""
    a, b = cite("https://a.example/", "A"), cite("https://b.example/")
    body = (
        answer_with({"citations": []})
        + answer_with({"citations": [a]})
        + answer_with({"citations": [a]})
        + answer_with({"citations": [a, cite(None, "no url"), b, cite("https://a.example/", "A2")]})
        + answer_with({"citations": [a, b]}, status="finished_successfully")
        + END
    )
    assert of(Citation, decode_stream(body.encode())) == [
        Citation("https://a.example/", "A"),
        Citation("https://b.example/", None),
    ]


def test_content_reference_shapes() -> None:
    """Own url, items (with supporting_websites) and sources_footnote sources are read."""
    refs = [
        {"type": "webpage", "url": "https://own.example/", "title": "Own"},
        {
            "type": "grouped_webpages",
            "items": [
                {
                    "url": "https://item.example/",
                    "title": "Item",
                    "supporting_websites": [{"url": "https://support.example/", "title": ""}],
                }
            ],
            "fallback_items": [{"url": "https://fallback.example/", "title": "F"}],
        },
        {"type": "sources_footnote", "sources": [{"url": "https://src.example/", "title": "S"}]},
        {"type": "image_v2", "images": [{"url": "https://img.example/x.png"}]},
        "junk",
        {"items": "junk", "sources": [None, 3]},
    ]
    body = (
        answer_with({})
        + answer_with({"content_references": refs}, status="finished_successfully")
        + END
    )
    assert of(Citation, decode_stream(body.encode())) == [
        Citation("https://own.example/", "Own"),
        Citation("https://item.example/", "Item"),
        Citation("https://support.example/", None),
        Citation("https://src.example/", "S"),
    ]


def test_citations_of_non_answer_messages_are_ignored() -> None:
    """Only the answer message's citations count (not tool calls or hidden messages)."""
    tool_call = message(
        "search", mid="k", recipient="web.run", metadata={"citations": [cite("https://x.example/")]}
    )
    body = snapshot(tool_call) + answer() + END
    assert of(Citation, decode_stream(body.encode())) == []


def test_v1_citation_appends() -> None:
    """v1 appends to /message/metadata/citations (list or single entry) are picked up."""
    body = (
        V1_HEAD
        + add(message(mid="ans", metadata={"citations": []}), 0)
        + sse_delta({"p": "/message/content/parts/0", "o": "append", "v": "Hi"})
        + sse_delta({"p": "/message/metadata/citations", "o": "append", "v": [cite("https://1/")]})
        + sse_delta({"p": "/message/metadata/citations", "o": "append", "v": cite("https://2/")})
        + sse_delta({"p": "/message/content/parts/0", "o": "append", "v": "!"})
    )
    events = ConversationDecoder().feed(body.encode())
    assert [e for e in events if isinstance(e, TextDelta | Citation)] == [
        TextDelta("Hi"),
        Citation("https://1/"),
        Citation("https://2/"),
        TextDelta("!"),
    ]


# -- private-use markers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("plain", "plain"),
        ("a\ue200cite\ue202turn0search3\ue201b", "ab"),
        ("\ue203x\ue204 y\ue206", "x y"),
        ("stray \ue201 close", "stray  close"),
        ("a\ue200b\ue200c\ue201d", "ad"),
        ("open \ue200cite\ue202turn0", "open citeturn0"),
        ("\ue200\ue201\ue200\ue201", ""),
        ("x\ue200" + "y" * MAX_SPAN + "\ue201z", "x" + "y" * MAX_SPAN + "z"),
        ("x\ue200" + "y" * (MAX_SPAN - 1) + "\ue201z", "xz"),
    ],
)
def test_strip_markers(raw: str, clean: str) -> None:
    """Spans go whole, stray markers go, an unclosed or over-long span keeps its text."""
    assert strip_markers(raw) == clean


def test_filter_holds_back_until_the_span_closes() -> None:
    """Text after an unmatched U+E200 is held, then dropped with its span."""
    marks = MarkerFilter()
    assert marks.feed("Paris. \ue200ci") == "Paris. "
    assert marks.holding
    assert marks.feed("te\ue202turn0") == ""
    assert marks.feed("search0\ue201 Next") == " Next"
    assert not marks.holding
    assert marks.flush() == ""


def test_unclosed_span_is_released_when_the_answer_finishes() -> None:
    """The answer finishing releases held text (minus markers) before Finished."""
    body = (
        V1_HEAD
        + add(message(mid="ans"), 0)
        + sse_delta({"p": "/message/content/parts/0", "o": "append", "v": "See \ue200cite"})
        + sse_delta({"v": "\ue202turn0"})
        + sse_delta(
            {
                "o": "patch",
                "v": [
                    {"p": "/message/status", "o": "replace", "v": "finished_successfully"},
                    {"p": "/message/end_turn", "o": "replace", "v": True},
                ],
            }
        )
        + END
    )
    events = decode_stream(body.encode())
    assert [e for e in events if isinstance(e, TextDelta | Finished)] == [
        TextDelta("See "),
        TextDelta("citeturn0"),
        Finished("stop"),
    ]


def test_held_text_is_released_at_close() -> None:
    """A stream cut inside a span still gives back the held text from close()."""
    decoder = ConversationDecoder()
    decoder.feed((snapshot(message("x \ue200cite")) + 'data: {"error": "boom"}\n\n').encode())
    assert decoder.close() == [TextDelta("cite")]


marked_text = st.lists(
    st.sampled_from(
        ["a", "b ", "\ue200", "\ue201", "\ue202", "\ue203", "\ue204", "\ue206", "cite"]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=marked_text, cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_filter_is_split_invariant(text: str, cuts: list[int]) -> None:
    """Any split of the text gives the whole-text result."""
    points = sorted({c % (len(text) + 1) for c in cuts})
    marks = MarkerFilter()
    out, start = [], 0
    for point in [*points, len(text)]:
        out.append(marks.feed(text[start:point]))
        start = point
    out.append(marks.flush())
    assert "".join(out) == strip_markers(text)
    assert not any("\ue200" <= ch <= "\ue206" for ch in "".join(out))


@settings(max_examples=150, deadline=None)
@given(text=marked_text, cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_decoder_strips_markers_for_any_delta_split(text: str, cuts: list[int]) -> None:
    """Through the decoder (v1 appends) the answer text is the whole-text result."""
    points = sorted({c % (len(text) + 1) for c in cuts})
    body = V1_HEAD + add(message(mid="ans", channel="final"), 0)
    start = 0
    for point in [*points, len(text)]:
        if point > start:
            body += sse_delta(
                {"p": "/message/content/parts/0", "o": "append", "v": text[start:point]}
            )
        start = point
    body += sse_delta(
        {
            "p": "",
            "o": "patch",
            "v": [
                {"p": "/message/status", "o": "replace", "v": "finished_successfully"},
                {"p": "/message/end_turn", "o": "replace", "v": True},
            ],
        }
    )
    events = decode_stream((body + END).encode())
    assert texts(events) == strip_markers(text)
    assert events[-1] == Finished("stop")


def test_text_without_markers_is_returned_as_is() -> None:
    """The fast path hands back the very same string."""
    text = "no markers here " * 10
    assert MarkerFilter().feed(text) is text
