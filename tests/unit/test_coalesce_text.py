"""``coalesce_text``: the text of one read joined, everything else kept in order."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from chat2api.conversation import coalesce_text
from chat2api.protocol.events import (
    Citation,
    Event,
    Finished,
    Metadata,
    ReasoningDelta,
    TextDelta,
)


def test_runs_of_text_become_one_delta_each() -> None:
    events: list[Event] = [
        Metadata(conversation_id="c1"),
        TextDelta("Hel"),
        TextDelta("lo, "),
        TextDelta("world"),
        Citation("https://example.com/a", "A"),
        TextDelta("!"),
        ReasoningDelta("not answer text"),
        TextDelta(" Bye"),
        TextDelta("."),
        Finished("stop"),
    ]
    assert coalesce_text(events) == [
        Metadata(conversation_id="c1"),
        TextDelta("Hello, world"),
        Citation("https://example.com/a", "A"),
        TextDelta("!"),
        ReasoningDelta("not answer text"),
        TextDelta(" Bye."),
        Finished("stop"),
    ]


def test_a_single_event_or_none_is_returned_as_is() -> None:
    one: list[Event] = [TextDelta("x")]
    assert coalesce_text(one) is one
    assert coalesce_text([]) == []


_events = st.lists(
    st.one_of(
        st.builds(TextDelta, st.text(max_size=5)),
        st.builds(ReasoningDelta, st.text(max_size=5)),
        st.builds(Metadata, st.text(max_size=3)),
    ),
    max_size=30,
)


@given(_events)
def test_only_the_chunking_of_the_text_changes(events: list[Event]) -> None:
    merged = coalesce_text(events)
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert "".join(e.text for e in merged if isinstance(e, TextDelta)) == "".join(texts)
    assert [e for e in merged if not isinstance(e, TextDelta)] == [
        e for e in events if not isinstance(e, TextDelta)
    ]
    assert not any(
        isinstance(a, TextDelta) and isinstance(b, TextDelta) for a, b in itertools.pairwise(merged)
    )
