"""The decoder's fast paths give exactly what its general path gives.

Delta records that arrive whole in their chunk skip the SSE decoder, and a
bare ``{"v": "..."}`` going on with the answer's text skips the message's
re-reading. Fed one byte at a time, no chunk is ever a whole record, so the
SSE decoder reads everything, and a decoder that never takes the second
fast path (``FullReading``) re-reads every message; fed one record per
chunk (as the simulator and a live upstream send them), the fast paths
take most of it; so they do fed a few records per chunk. A varied
corpus (the recorded fixtures, simulator streams of both formats, and
streams bent at the edges the fast paths check) must decode to the same
events, errors and resume offsets either way.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from chat2api.protocol.errors import ProtocolError
from chat2api.protocol.events import Event
from chat2api.protocol.stream import ConversationDecoder, _whole_records
from chat2api.sim.records import EchoMessage, Turn, render_legacy, render_v1
from chat2api.sim.replies import reply_text, split_chunks

STREAMS = Path(__file__).resolve().parents[2] / "fixtures" / "streams"
TEXTS = [
    reply_text("fast path", 40),
    'quotes " and \\ backslashes \\n, tabs\t, a \u2028 line separator',
    "emoji 🙂👍🏽 and CJK 漢字 and combining e\u0301",
    "markers \ue200cite\ue202turn0search0\ue201 kept out, a stray \ue203 too",
    "json-ish }\n\n{ text event: delta\ndata: {",
    "",
]


def _sim_stream(text: str, *, v1: bool, words_per_chunk: int = 1, thoughts: bool = False) -> bytes:
    turn = Turn(
        conversation_id=str(uuid.UUID(int=7)),
        new_conversation=True,
        model_slug="gpt-5-3",
        default_model_slug="auto",
        plan_type="free",
        echoes=(
            EchoMessage(
                str(uuid.UUID(int=8)), "user", {"content_type": "text", "parts": ["hi"]}, {}
            ),
        ),
        parent_id="client-created-root",
        chunks=tuple(split_chunks(text, words_per_chunk)) if text else (),
        thought_chunks=("Thinking", " about", " it") if thoughts else None,
        answer_id=str(uuid.UUID(int=9)),
    )
    return b"".join((render_v1 if v1 else render_legacy)(turn).records)


def _corpus() -> dict[str, bytes]:
    corpus = {path.stem: path.read_bytes() for path in sorted(STREAMS.glob("*.sse"))}
    for i, text in enumerate(TEXTS):
        for v1 in (True, False):
            name = f"sim_{'v1' if v1 else 'legacy'}_{i}"
            corpus[name] = _sim_stream(text, v1=v1)
            corpus[name + "_3words"] = _sim_stream(text, v1=v1, words_per_chunk=3)
            corpus[name + "_thoughts"] = _sim_stream(text, v1=v1, thoughts=True)
    base = _sim_stream(TEXTS[0], v1=True)
    bare = base.index(b'event: delta\ndata: {"v":')
    corpus["crlf"] = base.replace(b"\n", b"\r\n")
    corpus["cr_inside_record"] = base[:bare] + b'event: delta\ndata: {"v":"a"\r}\n\n' + base[bare:]
    corpus["bad_utf8_record"] = base[:bare] + b'event: delta\ndata: {"v":"\xff"}\n\n' + base[bare:]
    corpus["not_json_record"] = base[:bare] + b'event: delta\ndata: {"v":}\n\n' + base[bare:]
    corpus["other_field"] = base[:bare] + b'event: delta\nid: 7\ndata: {"v":"x"}\n\n' + base[bare:]
    corpus["bad_op"] = base[:bare] + b'event: delta\ndata: {"o":"nope","v":1}\n\n' + base[bare:]
    corpus["second_part"] = (
        base[:bare]
        + b'event: delta\ndata: {"p":"/message/content/parts/1","o":"add","v":"B"}\n\n'
        + base[bare:]
    )
    corpus["after_done"] = base + b'event: delta\ndata: {"v":"late"}\n\n'
    corpus["no_blank_line_at_end"] = base + b'event: delta\ndata: {"v":"cut"}\n'
    return corpus


CORPUS = _corpus()


def _records(body: bytes) -> list[bytes]:
    """``body`` cut after every blank line: one record per chunk, as streamed."""
    return [piece for piece in re.split(rb"(?<=\n\n)", body) if piece]


class FullReading(ConversationDecoder):
    """The general path only: every record re-reads the message it touched."""

    def _answer_text(self, root: object) -> None:
        return None


def _outcome(
    chunks: list[bytes], decoder: ConversationDecoder | None = None
) -> tuple[list[Event], int, str | None]:
    decoder = decoder or ConversationDecoder()
    events: list[Event] = []
    error = None
    try:
        for chunk in chunks:
            events += decoder.feed(chunk)
        events += decoder.close()
    except ProtocolError as exc:
        error = type(exc).__name__
    return events, decoder._records, error


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_record_chunks_decode_as_bytes_do(name: str) -> None:
    body = CORPUS[name]
    general = _outcome([body[i : i + 1] for i in range(len(body))], FullReading())
    assert _outcome(_records(body)) == general
    for size in (2, 3, 5):  # records arriving together, as under load
        records = _records(body)
        grouped = [b"".join(records[i : i + size]) for i in range(0, len(records), size)]
        assert _outcome(grouped) == general
    assert _outcome([body]) == general
    assert _outcome(_records(body), FullReading()) == general


def test_the_fast_paths_are_taken() -> None:
    """Record-sized chunks of a simulator stream are nearly all whole delta records."""
    chunks = _records(CORPUS["sim_v1_0"])
    whole = [c for c in chunks if _whole_records(c) is not None]
    assert len(whole) >= 40
    decoder = ConversationDecoder()
    taken = 0
    for chunk in chunks:
        if chunk in whole and decoder._sse.between_events and decoder._fast is not None:
            taken += 1  # both fast paths: no SSE decoding, no re-reading of the message
        decoder.feed(chunk)
    assert taken >= 38


@pytest.mark.parametrize(
    "chunk",
    [
        b'event: delta\ndata: {"v":"a"}\n\ndata: {"type":"x"}\n\n',
        b'event: delta\ndata: {"v":"a\r"}\n\n',
        b'event: delta\ndata: {"v":"\xc3"}\n\n',
        b'event: delta\ndata: {"v":"a"} trailing\n\n',
        b'event: delta\ndata: {"v":"a"}\n\n\nevent: delta\ndata: {"v":"b"}\n\n',
        b'event: delta\ndata: {"v":"a"}\n\nevent: delta\ndata: {"v":"b"}\n',
        # One record (three line ends), but not whole: each shape the one-record path rejects.
        b'event: delta\ndata: {"v":"a"}\n\nx',
        b'event: deltb\ndata: {"v":"a"}\n\n',
        b'event: delta\ndata: {"v":"a"}\n\n}\n\n',
        b'event: delta\ndata: {"v":"a\r"}\n\n',
        b'event: delta\ndata: {"v":"a"}}\n\n',
    ],
)
def test_not_whole_records(chunk: bytes) -> None:
    assert _whole_records(chunk) is None


def test_whole_records() -> None:
    assert _whole_records(b'event: delta\ndata: {"v":"a"}\n\n') == [{"v": "a"}]
    chunk = b'event: delta\ndata: {"v":"a"}\n\nevent: delta\ndata: {"p":"","o":"add","v":{}}\n\n'
    assert _whole_records(chunk) == [{"v": "a"}, {"p": "", "o": "add", "v": {}}]
