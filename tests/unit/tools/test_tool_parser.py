"""ToolCallParser: calls recognised in streamed text, whatever the chunking."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from toolcase import TOOLS, merge, run, run_chars

from chat2api.convert.tools import (
    CALL_END,
    CALL_START,
    CallArgumentsDelta,
    CallDone,
    CallInvalid,
    CallStarted,
    TextOut,
    ToolCallParser,
    ToolEvent,
    new_call_id,
)

WEATHER = (
    "Let me look that up.\n"
    "<tool_call>\n"
    '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n'
    "</tool_call>\n"
)
TWO_CALLS = (
    "Checking both.\n"
    "<tool_call>\n"
    '{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
    "</tool_call>\n"
    "<tool_call>\n"
    '{"name": "search", "arguments": {"query": "louvre hours", "limit": 3}}\n'
    "</tool_call>\n"
    "Trailing words the client never sees."
)
HOLD_LIMIT = len(CALL_END) - 1


def test_single_call_whole() -> None:
    """A whole answer gives its text, then started, deltas and done for the call."""
    merged = run(WEATHER)
    assert merged.text == "Let me look that up.\n"
    call = merged.calls[0]
    assert call.name == "get_weather"
    assert call.done == '{"city":"Paris","unit":"c"}'
    assert call.order == ["started", "delta", "done"]


def test_call_id_shape() -> None:
    """Call ids are 'call_' and 24 letters and digits, fresh each call."""
    ids = {new_call_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"call_[A-Za-z0-9]{24}", i) for i in ids)
    assert re.fullmatch(r"call_[A-Za-z0-9]{24}", run(WEATHER).calls[0].call_id or "")


@pytest.mark.parametrize(
    "text",
    [
        WEATHER,
        TWO_CALLS,
        "```py\nx = '<tool_call>'\n```\n" + WEATHER,
        "Use `<tool_call>` tags.\n" + TWO_CALLS,
        "<tool_call>\n{'name': 'search', 'arguments': {'query': 'a\\'b', 'exact': None,},}\n"
        "</tool_call>",
        '<tool_call>\n```json\n{"name": "now", "arguments": {}}\n```\n</tool_call>',
        '<tool_call>{"name": "search", "arguments": {"query": "x", "limit": 1e3}}</tool_call>',
        '<tool_call>{"name": "search", "arguments": {"query": "\\u00e9\\n\\"q\\""}}</tool_call>',
        '<tool_call>{"name": "nope", "arguments": {}}</tool_call>',
        '<tool_call>{"name": "get_weather", "arguments": {"city": 1}}</tool_call>',
        '<tool_call>{"name": "get_weather", "arguments": {"city": "P"',
        "a < b <tool <tool_cal </tool_call> c",
    ],
)
def test_every_split_point_gives_the_same_result(text: str) -> None:
    """Cutting the text at any one point, or at every character, merges to the same result."""
    whole = run(text).comparable()
    assert run_chars(text).comparable() == whole
    for cut in range(1, len(text)):
        assert run(text, [cut]).comparable() == whole, cut


def test_text_streams_before_the_call_completes() -> None:
    """Plain text is released at once: never more than len(marker)-1 characters held back."""
    parser = ToolCallParser(TOOLS)
    prefix = "Sure < 3 and <b>bold</b> <tool_ca</tool_c text. " * 3
    out = ""
    for i, ch in enumerate(prefix):
        out += "".join(e.text for e in parser.feed(ch) if isinstance(e, TextOut))
        assert len(prefix[: i + 1]) - len(out) <= HOLD_LIMIT
    assert out == prefix[: len(out)]
    rest = parser.feed(WEATHER.split("\n", 1)[1]) + parser.close()
    assert "".join(e.text for e in rest if isinstance(e, TextOut)) == prefix[len(out) :]
    assert next(type(e) for e in rest if not isinstance(e, TextOut)) is CallStarted


def test_text_is_out_before_the_call_starts() -> None:
    """Text before a call is out by the feed that completes the start marker, at the latest."""
    parser = ToolCallParser(TOOLS)
    first = parser.feed("Let me look that up.\n<tool_call>")
    assert first == [TextOut("Let me look that up.\n")]
    events = parser.feed('\n{"name": "get_weather", "arguments": {"city": "Pa')
    assert isinstance(events[0], CallStarted)
    assert "".join(e.text for e in events if isinstance(e, CallArgumentsDelta)) == '{"city":"Pa'


def test_name_known_before_the_arguments_end() -> None:
    """CallStarted comes as soon as the name's string closes, before any argument."""
    parser = ToolCallParser(TOOLS, call_id=lambda: "call_fixed")
    assert parser.feed('<tool_call>\n{"name": "search"') == [CallStarted(0, "call_fixed", "search")]
    assert parser.feed(', "arguments": {"query": "a b') == [CallArgumentsDelta(0, '{"query":"a b')]


def test_deltas_are_incremental() -> None:
    """Argument deltas arrive while the JSON is still incomplete, one per feed."""
    parser = ToolCallParser(TOOLS)
    parser.feed('<tool_call>{"name": "search", "arguments": ')
    pieces = ['{"query": ', '"long ', "text ", 'here", ', '"limit": 5', "}}", "</tool_call>"]
    deltas = [parser.feed(p) for p in pieces]
    assert deltas[0] == [CallArgumentsDelta(0, '{"query":')]
    assert deltas[1] == [CallArgumentsDelta(0, '"long ')]
    assert deltas[2] == [CallArgumentsDelta(0, "text ")]
    assert deltas[3] == [CallArgumentsDelta(0, 'here"')]  # the comma waits for what follows
    assert deltas[4] == [CallArgumentsDelta(0, ',"limit":')]  # a number waits for its end
    assert deltas[5] == [CallArgumentsDelta(0, "5}")]
    assert deltas[6] == [CallDone(0, '{"query":"long text here","limit":5}')]


@pytest.mark.parametrize(
    "text",
    [
        '```\n<tool_call>\n{"name": "now", "arguments": {}}\n</tool_call>\n```\n',
        '~~~~\n<tool_call>\n{"name": "now"}\n</tool_call>\n~~~\n<tool_call>\n~~~~\n',
        "   ```json\n<tool_call>{}</tool_call>\n   ```\n",
        "Write `<tool_call>` then JSON then `</tool_call>`.\n",
        "Use ``a ` <tool_call> `` here.\n",
        "```\n``` not a closer <tool_call>\n```\n",
    ],
)
def test_markers_inside_code_are_plain_text(text: str) -> None:
    """A marker in a fenced block or an inline code span is shown, not taken as a call."""
    merged = run(text)
    assert merged.text == text
    assert merged.calls == {}
    assert run_chars(text).comparable() == merged.comparable()


def test_call_after_a_closed_fence_is_a_call() -> None:
    """Once the fence closes, a marker is a call again."""
    text = "```\n<tool_call>\n```\n" + WEATHER
    merged = run_chars(text)
    assert merged.text == "```\n<tool_call>\n```\nLet me look that up.\n"
    assert merged.calls[0].done == '{"city":"Paris","unit":"c"}'


def test_unclosed_inline_code_ends_with_its_line() -> None:
    """A lone backtick does not hide a call on a later line."""
    merged = run_chars("It's a `stray backtick.\n" + WEATHER)
    assert merged.text == "It's a `stray backtick.\nLet me look that up.\n"
    assert merged.calls[0].name == "get_weather"


def test_two_parallel_calls() -> None:
    """Two blocks are calls 0 and 1; text after the last call is dropped."""
    merged = run_chars(TWO_CALLS)
    assert merged.text == "Checking both.\n"
    assert [(c.name, c.done) for c in merged.calls.values()] == [
        ("get_weather", '{"city":"Paris"}'),
        ("search", '{"query":"louvre hours","limit":3}'),
    ]
    assert sorted(merged.calls) == [0, 1]
    assert merged.calls[0].call_id != merged.calls[1].call_id


def test_not_parallel_takes_the_first_call_only() -> None:
    """With parallel=False later blocks give no events and are counted as dropped."""
    parser = ToolCallParser(TOOLS, parallel=False)
    events = parser.feed(TWO_CALLS) + parser.close()
    merged = merge(events)
    assert list(merged.calls) == [0]
    assert merged.calls[0].done == '{"city":"Paris"}'
    assert parser.dropped_calls == 1


def test_missing_end_marker_before_next_call() -> None:
    """A new start marker ends a block whose end marker was forgotten."""
    text = (
        '<tool_call>{"name": "now"}\n<tool_call>{"name": "get_weather", "arguments": {"city": "x"}}'
    )
    merged = run_chars(text)
    assert merged.calls[0].done == "{}"
    assert merged.calls[1].done == '{"city":"x"}'  # complete object, end marker never came


def test_stray_end_marker_is_never_text() -> None:
    """An end marker without a call is removed from the visible text."""
    assert run_chars("one </tool_call>two").text == "one two"


def test_arguments_before_name() -> None:
    """Arguments written before the name still make a call, sent in one piece once named."""
    merged = run_chars(
        '<tool_call>{"arguments": {"name": "x", "city": "Rome"}, "name": "get_weather"}</tool_call>'
    )
    assert merged.calls[0].name == "get_weather"
    assert merged.calls[0].done == '{"name":"x","city":"Rome"}'


def test_double_encoded_arguments() -> None:
    """OpenAI-style string arguments holding the object are decoded."""
    text = '<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": \\"Oslo\\"}"}</tool_call>'
    merged = run_chars(text)
    assert merged.calls[0].done == '{"city":"Oslo"}'
    assert merged.calls[0].order == ["started", "delta", "done"]


def test_no_arguments_means_empty_object() -> None:
    """A call with only a name has arguments '{}'."""
    assert run('<tool_call>{"name": "now"}</tool_call>').calls[0].done == "{}"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"name": "search", "arguments": {"query": "q", "limit": 2,}}', '{"query":"q","limit":2}'),
        ('{"name": "search", "arguments": {"query": "q"', '{"query":"q"}'),
        ('{"name": "search", "arguments": {"query": "q"}', '{"query":"q"}'),
        ("{'name': 'search', 'arguments': {'query': 'it\"s'}}", '{"query":"it\\"s"}'),
        (
            '{"name": "search", "arguments": {"query": "q", "exact": True}}',
            '{"query":"q","exact":true}',
        ),
        (
            '{"name": "search", "arguments": {"query": "q", "exact": None}}',
            '{"query":"q","exact":null}',
        ),
        ('{"name": "search", "arguments": {"query": "a\nb\tc"}}', '{"query":"a\\nb\\tc"}'),
        ('```json\n{"name": "search", "arguments": {"query": "q"}}\n```', '{"query":"q"}'),
        ('{"name": "search", "arguments": "{\\"query\\": \\"q\\"}"}', '{"query":"q"}'),
        ('{"name": "search", "arguments": {"query": "\\d+ items"}}', '{"query":"\\\\d+ items"}'),
    ],
    ids=[
        "trailing-comma",
        "missing-braces",
        "missing-outer-brace",
        "single-quotes",
        "python-true",
        "python-none",
        "raw-newline-in-string",
        "code-fence",
        "double-encoded",
        "invalid-escape",
    ],
)
def test_each_repair_kind_in_a_call(body: str, expected: str) -> None:
    """A call whose JSON needs an unambiguous fix is done with the repaired arguments."""
    text = f"{CALL_START}\n{body}\n{CALL_END}"
    merged = run_chars(text)
    assert merged.calls[0].done == expected
    assert merged.calls[0].args == expected
    assert run(text).comparable() == merged.comparable()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"name": "search", "arguments": {"query": "q" "limit": 1}}', "after a value"),
        ('{"name": "search", "arguments": {query: "q"}}', "quoted key"),
        ("{'name': 'search', 'arguments': {'query': 'it's'}}", "after a value"),
        ('{"name": "search", "arguments": {"query": NaN}}', "'NaN' is not a JSON value"),
        ('{"name": "search", "arguments": "not json"}', "not a JSON object"),
        ('{"name": "search", "arguments": [1]}', "must be a JSON object"),
        ("search(query='q')", "one JSON object"),
        ("", "empty"),
        ('{"arguments": {}}', 'no "name"'),
        ('{"name": "search", "name": "now"}', "twice"),
    ],
)
def test_unrepairable_call_is_invalid(body: str, reason: str) -> None:
    """JSON with no single obvious reading gives CallInvalid with the raw block and why."""
    merged = run_chars(f"{CALL_START}\n{body}\n{CALL_END}")
    invalid = merged.calls[0].invalid
    assert invalid is not None
    assert invalid.raw == f"\n{body}\n"
    assert reason in invalid.reason
    assert merged.calls[0].done is None


def test_unknown_tool_is_invalid_without_start() -> None:
    """An unknown name gives only CallInvalid, naming the tools that exist."""
    merged = run_chars('<tool_call>{"name": "delete_all", "arguments": {}}</tool_call>')
    call = merged.calls[0]
    assert call.order == ["invalid"]
    assert call.invalid is not None
    assert "unknown tool 'delete_all'" in call.invalid.reason
    assert "get_weather, search, now" in call.invalid.reason


def test_schema_violation_is_invalid_with_the_error() -> None:
    """Arguments that break the schema give CallInvalid naming the path and the rule."""
    merged = run(
        '<tool_call>{"name": "get_weather", "arguments": {"city": "x", "unit": "k"}}</tool_call>'
    )
    invalid = merged.calls[0].invalid
    assert invalid is not None
    assert invalid.reason == "arguments.unit: 'k' is not one of ['c', 'f']"
    missing = run('<tool_call>{"name": "get_weather", "arguments": {}}</tool_call>').calls[0]
    assert missing.invalid is not None
    assert missing.invalid.reason == "arguments: 'city' is a required property"


def test_cut_off_call_at_close_is_invalid() -> None:
    """An answer that ends inside a call's JSON gives CallInvalid at close()."""
    parser = ToolCallParser(TOOLS)
    events: list[ToolEvent] = parser.feed(
        'Hi\n<tool_call>\n{"name": "search", "arguments": {"query": "q"'
    )
    assert parser.close() == [
        CallInvalid(
            0,
            '\n{"name": "search", "arguments": {"query": "q"',
            "the call was cut off before </tool_call>",
        )
    ]
    assert isinstance(events[1], CallStarted)


def test_complete_call_without_end_marker_at_close_is_done() -> None:
    """A complete object whose end marker never came is still a call."""
    merged = run('<tool_call>\n{"name": "now", "arguments": {}}\n')
    assert merged.calls[0].done == "{}"


def test_held_back_marker_prefix_is_text_at_close() -> None:
    """Text ending in what looks like the start of a marker is released by close()."""
    parser = ToolCallParser(TOOLS)
    assert parser.feed("a <tool_ca") == [TextOut("a ")]
    assert parser.close() == [TextOut("<tool_ca")]


def test_feed_after_close_raises() -> None:
    """The parser refuses input after close()."""
    parser = ToolCallParser(TOOLS)
    parser.close()
    with pytest.raises(RuntimeError):
        parser.feed("x")


_PIECES = [
    *"ab <>/_`~\n\t{}\"'lotc",
    "tool",
    "_call",
    "```",
    "<tool",
    "</tool",
    "<tool_call",
    "é🎉",
]
_PLAIN = (
    st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=3)), max_size=30)
    .map("".join)
    .filter(lambda s: CALL_START not in s and CALL_END not in s)
)


@settings(max_examples=300, deadline=None)
@given(text=_PLAIN, cuts=st.lists(st.integers(min_value=1, max_value=79), max_size=8))
def test_text_without_markers_is_unchanged(text: str, cuts: list[int]) -> None:
    """Any text without markers comes out exactly as it went in, whatever the split."""
    points = sorted({c for c in cuts if c < len(text)})
    merged = run(text, points)
    assert merged.text == text
    assert merged.calls == {}


@settings(max_examples=200, deadline=None)
@given(
    prefix=_PLAIN.filter(lambda s: "`" not in s and "~~~" not in s),
    query=st.text(max_size=30),
    cuts=st.lists(st.integers(min_value=1, max_value=200), max_size=10),
)
def test_any_split_of_a_call_merges_the_same(prefix: str, query: str, cuts: list[int]) -> None:
    """A call after arbitrary text merges to the same result under any chunking."""
    import json

    body = json.dumps({"name": "search", "arguments": {"query": query}}, indent=1)
    text = f"{prefix}{CALL_START}\n{body}\n{CALL_END}"
    merged = run(text, sorted({c for c in cuts if c < len(text)}))
    assert merged.text == prefix
    assert merged.calls[0].done is not None
    assert json.loads(merged.calls[0].done) == {"query": query}
    assert merged.comparable() == run(text).comparable()


_NOISE = [
    *_PIECES,
    CALL_START,
    CALL_END,
    "\n",
    '{"name": "search"',
    '"arguments": ',
    '{"query": "q"',
    "}",
    ",",
    "True",
]


@settings(max_examples=500, deadline=None)
@given(
    text=st.lists(st.one_of(st.sampled_from(_NOISE), st.text(max_size=4)), max_size=40).map(
        "".join
    ),
    cuts=st.lists(st.integers(min_value=1, max_value=300), max_size=10),
)
def test_garbage_never_raises_and_never_depends_on_chunking(text: str, cuts: list[int]) -> None:
    """Any text, markers and broken JSON included, gives well-ordered events, split-invariant."""
    merged = run(text, sorted({c for c in cuts if c < len(text)}))  # merge() checks the order
    assert merged.comparable() == run(text).comparable()
    if "`" not in text and "~" not in text:  # no code: no marker is ever visible
        assert CALL_START not in merged.text
        assert CALL_END not in merged.text
