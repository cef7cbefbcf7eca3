"""A Responses stream's text delta events from their template are the bytes of the general path."""

from __future__ import annotations

import re
from typing import Any

from chat2api.api.responses import TextDeltaEvent
from chat2api.api.sse import sse_event
from chat2api.convert.responses import ResponseBuilder

TEXTS = [
    "Hello",
    " world",
    'quotes " and \\ backslashes, \n newlines, \t tabs, \r returns, \x00 \x1f controls',
    "\u2028 \u2029 separators, </script> and \ue200 private use \ue201",
    "emoji 🙂👍🏽, CJK 漢字, combining e\u0301, a long run " + "x" * 5000,
    "\ue000chat2api text\ue001",  # the template's own mark, as text
]
DELTAS: list[dict[str, Any]] = [
    {"reasoning_content": "thinking"},
    {"content": ""},  # nothing
    *({"content": text} for text in TEXTS),  # opens the message item, then the template
    {"reasoning_content": " more"},  # closes it
    {"content": "again"},
    {"content": " and again"},
    {"content": "\ue000chat2api seq\ue001"},  # the template's other mark, as text
    {"content": "x", "reasoning_content": "y"},
]
_IDS = re.compile(rb'"(msg|rs|resp)_[0-9a-f]+"')


def _general(builder: ResponseBuilder) -> list[bytes]:
    return [sse_event(event) for delta in DELTAS for event in builder.feed(delta)]


def _templated(builder: ResponseBuilder, used: list[str]) -> list[bytes]:
    template = TextDeltaEvent()
    out = []
    for delta in DELTAS:  # as api.responses._events reads them
        if len(delta) == 1 and type(text := delta.get("content")) is str and text:
            at = builder.output_text(text)
            if at is not None:
                out.append(template.encode(*at, text))
                used.append(text)
                continue
        out += [sse_event(event) for event in builder.feed(delta)]
    return out


def _finished(builder: ResponseBuilder, events: list[bytes]) -> list[bytes]:
    events += [sse_event(e) for e in builder.finish({"total_tokens": 1}, finish_reason="stop")]
    return [_IDS.sub(b'"id"', event) for event in events]  # the ids are random


def test_template_gives_the_general_bytes() -> None:
    general, templated = ResponseBuilder({}), ResponseBuilder({})
    expected = _finished(general, _general(general))
    used: list[str] = []
    got = _finished(templated, _templated(templated, used))
    assert got == expected
    # The first text of each message item opens it: the general path.
    assert used == [*TEXTS[1:], " and again", "\ue000chat2api seq\ue001"]
