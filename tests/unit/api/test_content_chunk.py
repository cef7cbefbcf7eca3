"""A stream's content chunks from their template are the bytes of the general encoding."""

from __future__ import annotations

import pytest

from chat2api.api.chat import ContentChunk
from chat2api.api.sse import sse_data
from chat2api.convert.completion import Answer
from chat2api.convert.models import ModelRoute, resolve_model

TEXTS = [
    "Hello",
    " world",
    "",
    'quotes " and \\ backslashes, \n newlines, \t tabs, \r returns, \x00 \x1f controls',
    "\u2028 \u2029 separators, </script> and \ue200 private use \ue201",
    "emoji 🙂👍🏽, CJK 漢字, combining e\u0301, a long run " + "x" * 5000,
    "\ue000chat2api content\ue001",  # the template's own mark, as text
]


def _general(answer: Answer, text: str, *, include_usage: bool, history: bool) -> bytes:
    delta = {"content": text}
    return sse_data(answer.chunk(delta, with_usage_field=include_usage, history=history))


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("history", [False, True])
@pytest.mark.parametrize(
    "route",
    [resolve_model("gpt-4o"), ModelRoute('odd "model" \ue000chat2api content\ue001', "auto")],
    ids=["plain", "mark-in-model"],
)
def test_template_gives_the_general_bytes(
    route: ModelRoute, include_usage: bool, history: bool
) -> None:
    answer = Answer(route, [], None, None)  # type: ignore[arg-type]
    template = ContentChunk(answer, include_usage=include_usage, history=history)
    ids = [(None, None), ("conv-1", None), ("conv-1", "msg-1"), ("conv-2", 'msg-"2"')]
    for conversation_id, message_id in ids:
        answer.conversation_id, answer.message_id = conversation_id, message_id
        for text in TEXTS:
            got = template.encode(text)
            assert got == _general(answer, text, include_usage=include_usage, history=history)
    assert (b'"conversation_id":"conv-2"' in got) is history
    assert (b'"usage":null' in got) is include_usage
