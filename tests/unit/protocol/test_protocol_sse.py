"""The WHATWG server-sent-events decoder, whole and one byte at a time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat2api.protocol.errors import LineTooLong, ProtocolError
from chat2api.protocol.sse import ServerSentEvent, SSEDecoder


def decode_whole(body: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    return decoder.feed(body) + decoder.flush()


def decode_bytewise(body: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for i in range(len(body)):
        events += decoder.feed(body[i : i + 1])
    return events + decoder.flush()


def decode_both(body: bytes) -> list[ServerSentEvent]:
    """Decode whole and bytewise, insist they agree, return the events."""
    whole = decode_whole(body)
    assert decode_bytewise(body) == whole
    return whole


SAMPLE = (
    "\ufeff: a comment\r\n"
    "event: delta\r\n"
    'data: {"v": "héllo ✓ 👋"}\r\n'
    "\r\n"
    "id: 7\n"
    "data: line one\n"
    "data:  two leading spaces keep one\n"
    "retry: 3000\n"
    "\n"
    "data: cr only\r"
    "\r"
    "event: ignored-no-data\n"
    "\n"
    "data: [DONE]\n"
    "\n"
).encode()

SAMPLE_EVENTS = [
    ServerSentEvent("delta", '{"v": "héllo ✓ 👋"}'),
    ServerSentEvent("message", "line one\n two leading spaces keep one", "7", 3000),
    ServerSentEvent("message", "cr only", "7"),
    ServerSentEvent("message", "[DONE]", "7"),
]


def test_sample_whole_and_bytewise() -> None:
    """A stream mixing every line ending, comments, ids and UTF-8 decodes the same either way."""
    assert decode_both(SAMPLE) == SAMPLE_EVENTS


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    """A CR ending one chunk and an LF starting the next form one CRLF, not two lines."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n\r\n") == [ServerSentEvent(data="a\nb")]


def test_lone_cr_then_other_text_ends_line() -> None:
    """A CR at a chunk end followed by text ends the line (and a second CR dispatches)."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r") == [ServerSentEvent(data="a")]


def test_cr_then_crlf_is_two_line_ends() -> None:
    """CR then CRLF is two line ends (a blank line), so the event is dispatched."""
    assert decode_both(b"data: a\r\r\n") == [ServerSentEvent(data="a")]


def test_field_without_colon_has_empty_value() -> None:
    """A line `data` with no colon appends an empty line to the data buffer."""
    assert decode_both(b"data\n\n") == [ServerSentEvent(data="")]


def test_empty_data_line_is_dispatched_but_no_data_is_not() -> None:
    """`data:` alone dispatches an empty-data event; a record without data lines does not."""
    assert decode_both(b"data:\n\n") == [ServerSentEvent(data="")]
    assert decode_both(b"event: ping\n\n: keep-alive\n\n") == []


def test_only_one_leading_space_is_stripped() -> None:
    """`data:x` and `data: x` mean the same; further spaces are kept."""
    assert decode_both(b"data:x\n\ndata: x\n\ndata:  x\n\n") == [
        ServerSentEvent(data="x"),
        ServerSentEvent(data="x"),
        ServerSentEvent(data=" x"),
    ]


def test_unterminated_event_is_discarded_at_eof() -> None:
    """An event without its blank line at end of stream is not dispatched (WHATWG)."""
    assert decode_both(b"data: complete\n\ndata: partial\n") == [ServerSentEvent(data="complete")]
    assert decode_both(b"data: no newline at all") == []


def test_bom_only_stripped_at_stream_start() -> None:
    """A BOM split across chunks is stripped at the start; later BOMs are data."""
    decoder = SSEDecoder()
    assert decoder.feed(b"\xef\xbb") == []
    assert decoder.feed(b"\xbfdata: \xef\xbb\xbfx\n\n") == [ServerSentEvent(data="\ufeffx")]


def test_bom_before_field_name_only_stripped_once() -> None:
    """A second BOM at stream start belongs to the field name, which is then unknown."""
    assert decode_both(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n") == [
        ServerSentEvent(data="y")
    ]


def test_multibyte_character_split_across_chunks() -> None:
    """A UTF-8 character split across two chunks decodes as one character."""
    decoder = SSEDecoder()
    body = "data: 👋\n\n".encode()
    assert decoder.feed(body[:8]) == []
    assert decoder.feed(body[8:]) == [ServerSentEvent(data="👋")]


def test_invalid_utf8_becomes_replacement_character() -> None:
    """Invalid UTF-8 is replaced with U+FFFD as the standard says, never an exception."""
    assert decode_both(b"data: a\xffb\n\n") == [ServerSentEvent(data="a\ufffdb")]


def test_id_is_sticky_and_nul_ids_are_ignored() -> None:
    """The last event id carries over to later events; an id containing NUL is ignored."""
    body = b"id: 1\ndata: a\n\nid: x\x00y\ndata: b\n\nid\ndata: c\n\n"
    assert decode_both(body) == [
        ServerSentEvent(data="a", id="1"),
        ServerSentEvent(data="b", id="1"),
        ServerSentEvent(data="c", id=""),
    ]


def test_retry_must_be_ascii_digits() -> None:
    """Only an all-ASCII-digit retry value is kept, and only for its own event."""
    body = "retry: 10\ndata: a\n\nretry: 1x\ndata: b\n\nretry: ١٢\ndata: c\n\n".encode()
    assert decode_both(body) == [
        ServerSentEvent(data="a", retry=10),
        ServerSentEvent(data="b"),
        ServerSentEvent(data="c"),
    ]


def test_other_line_separators_are_not_line_ends() -> None:
    """Vertical tab, form feed, NEL and U+2028 stay inside the data (unlike splitlines)."""
    body = "data: a\x0bb\x0cc\x85d\u2028e\n\n".encode()
    assert decode_both(body) == [ServerSentEvent(data="a\x0bb\x0cc\x85d\u2028e")]


def test_unknown_fields_are_ignored() -> None:
    """Fields other than event/data/id/retry do nothing."""
    assert decode_both(b"foo: bar\ndata: x\n\n") == [ServerSentEvent(data="x")]


def test_line_too_long_raises_protocol_error() -> None:
    """A line or data buffer beyond the limit raises LineTooLong, whole or piecewise."""
    decoder = SSEDecoder(max_event_size=10)
    with pytest.raises(LineTooLong):
        decoder.feed(b"data: 0123456789")
    decoder = SSEDecoder(max_event_size=10)
    assert decoder.feed(b"data: 0123") == []
    with pytest.raises(LineTooLong):
        decoder.feed(b"456789")
    decoder = SSEDecoder(max_event_size=10)
    with pytest.raises(LineTooLong):
        decoder.feed(b"data: 0123\ndata: 4567\ndata: 89\n")


def test_flush_resets_for_reuse() -> None:
    """After flush the decoder starts a new stream (BOM stripped again, no leftovers)."""
    decoder = SSEDecoder()
    decoder.feed(b"data: leftover\n")
    assert decoder.flush() == []
    assert decoder.feed(b"\xef\xbb\xbfdata: new\n\n") == [ServerSentEvent(data="new")]


def test_feed_fields_matches_feed() -> None:
    """The tuple fast path yields the same fields as the dataclass path."""
    decoder = SSEDecoder()
    fields = decoder.feed_fields(SAMPLE)
    assert [ServerSentEvent(*f) for f in fields] == SAMPLE_EVENTS


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(SAMPLE)), max_size=30))
def test_random_splits_give_same_events(cuts: list[int]) -> None:
    """However the byte stream is cut into chunks, the events are the same."""
    points = sorted(set(cuts))
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    start = 0
    for point in [*points, len(SAMPLE)]:
        events += decoder.feed(SAMPLE[start:point])
        start = point
    assert events + decoder.flush() == SAMPLE_EVENTS


_LINES = [
    ("event: delta", None),
    ('data: {"v": "x"}', None),
    ("data: second line", None),
    (": comment", None),
    ("id: 42", None),
    ("", None),
]


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.sampled_from([line for line, _ in _LINES]), max_size=20),
    endings=st.lists(st.sampled_from(["\n", "\r", "\r\n"]), min_size=21, max_size=21),
    bytewise=st.booleans(),
)
def test_random_line_endings_give_same_events(
    lines: list[str], endings: list[str], bytewise: bool
) -> None:
    """Mixing CR, LF and CRLF line ends never changes the events."""
    reference = "".join(line + "\n" for line in lines).encode()
    parts = []
    previous = ""
    for line, end in zip(lines, endings, strict=False):
        if previous == "\r" and not line and end == "\n":
            end = "\r"  # "\r" + "" + "\n" would be one CRLF, not two line ends
        parts.append(line + end)
        previous = end
    mixed = "".join(parts).encode()
    expected = decode_whole(reference)
    got = decode_bytewise(mixed) if bytewise else decode_whole(mixed)
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.binary(max_size=64), max_size=12))
def test_arbitrary_bytes_only_raise_protocol_errors(chunks: list[bytes]) -> None:
    """Garbage never raises anything but ProtocolError (and usually nothing)."""
    decoder = SSEDecoder(max_event_size=100)
    try:
        for chunk in chunks:
            for event in decoder.feed(chunk):
                assert isinstance(event.data, str)
        decoder.flush()
    except ProtocolError:
        pass
