"""Resuming a decoded stream: a cut body continued from the records read gives the same events."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from chat2api.protocol.events import Event
from chat2api.protocol.stream import ConversationDecoder

STREAMS = Path(__file__).resolve().parents[2] / "fixtures" / "streams"
HEADER = b'event: delta_encoding\ndata: "v1"\n\n'


def _records(name: str) -> list[bytes]:
    """The fixture's SSE records, the encoding first, as a server keeps a turn."""
    body = (STREAMS / name).read_bytes()
    assert body.startswith(HEADER)
    return [r + b"\n\n" for r in body.split(b"\n\n") if r.strip()]


def _all_events(decoder: ConversationDecoder, body: bytes) -> list[Event]:
    return decoder.feed(body) + decoder.close()


def test_records_counted_and_token_kept() -> None:
    """Every record counts but an encoding record repeated; the resume token is read."""
    records = _records("v1_basic.sse")
    decoder = ConversationDecoder()
    decoder.feed(b"".join(records[:3]))
    assert decoder.interrupted() == 3
    decoder.feed(HEADER + records[3])  # a resumed body: its header is not a record
    assert decoder.interrupted() == 4
    assert decoder.resume_token is not None and decoder.resume_token.startswith("eyJ")
    assert decoder.conversation_id == "6a3523d9-cad4-83ec-bdcc-21f12f7d807b"


@settings(max_examples=200, deadline=None)
@given(data=st.data(), name=st.sampled_from(["v1_basic.sse", "v1_reasoning.sse", "v1_echo.sse"]))
def test_cut_anywhere_then_resumed_equals_whole(data: st.DataObject, name: str) -> None:
    """Cut at any byte, resumed (header + records from the offset): the same events as uncut."""
    records = _records(name)
    whole = b"".join(records)
    expected = _all_events(ConversationDecoder(), whole)
    cut = data.draw(st.integers(min_value=0, max_value=len(whole) - 1), label="cut")
    decoder = ConversationDecoder()
    got = decoder.feed(whole[:cut])
    offset = decoder.interrupted()
    got += _all_events(decoder, HEADER + b"".join(records[offset:]))
    assert got == expected
