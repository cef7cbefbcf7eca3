"""Cited sources (url_citation annotations) streamed the same as answered at once."""

from __future__ import annotations

import openai
import pytest

from chat2api.sim import SimServer
from chat2api.sim.generated import CITE_TITLE, CITE_URL, supporting_site
from servers import ServiceServer, sdk

ASK = "what happened #sim:cite"
SOURCES = 3


@pytest.fixture
def client(service: ServiceServer, token: str, sim: SimServer) -> openai.OpenAI:
    """The SDK on the service (both upstream formats); the simulator cites three sources."""
    sim.state.config = sim.state.config.patched({"cite_sources": SOURCES})
    return sdk(service, token)


def _expected() -> list[tuple[str, str]]:
    extra = [supporting_site(k) for k in range(1, SOURCES)]
    return [(CITE_URL, CITE_TITLE)] + [(site["url"], site["title"]) for site in extra]


def test_chat_stream_carries_the_annotations(client: openai.OpenAI) -> None:
    """Streamed chunks carry delta.annotations, equal to the non-stream message.annotations."""
    plain = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": ASK}]
    )
    message = plain.choices[0].message
    expected = [a.model_dump() for a in message.annotations or []]
    assert [(a.url_citation.url, a.url_citation.title) for a in message.annotations or []] == (
        _expected()
    )
    content = message.content or ""
    for note in message.annotations or []:
        cited = note.url_citation
        assert content[cited.start_index : cited.end_index] == f"[{cited.title}]({cited.url})"

    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": ASK}], stream=True
        )
    )
    carrying = [
        c for c in chunks if c.choices and (c.choices[0].delta.model_extra or {}).get("annotations")
    ]
    assert len(carrying) == 1  # one list, in the chunk with the finish reason
    assert carrying[0].choices[0].finish_reason == "stop"
    streamed_text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed_text == content
    assert carrying[0].choices[0].delta.model_extra["annotations"] == expected  # type: ignore[index]

    with client.chat.completions.stream(
        model="gpt-4o", messages=[{"role": "user", "content": ASK}]
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    accumulated = final.choices[0].message
    assert accumulated.content == content
    assert [a.model_dump() for a in accumulated.annotations or []] == expected


def test_responses_stream_carries_the_annotations(client: openai.OpenAI) -> None:
    """annotation.added events (by annotation_index) equal the non-stream annotations."""
    plain = client.responses.create(model="gpt-4o", input=ASK)
    (part,) = plain.output[0].content  # type: ignore[union-attr]
    expected = [a.model_dump() for a in part.annotations]  # type: ignore[union-attr]
    assert [(a["url"], a["title"]) for a in expected] == _expected()
    for note in expected:
        text = part.text[note["start_index"] : note["end_index"]]  # type: ignore[union-attr]
        assert text == f"[{note['title']}]({note['url']})"

    with client.responses.stream(model="gpt-4o", input=ASK) as stream:
        events = list(stream)
        final = stream.get_final_response()
    added = [e for e in events if e.type == "response.output_text.annotation.added"]
    assert [e.annotation_index for e in added] == list(range(SOURCES))
    assert [e.annotation.model_dump() for e in added] == expected  # type: ignore[union-attr]
    (done,) = [e for e in events if e.type == "response.content_part.done"]
    assert [a.model_dump() for a in done.part.annotations] == expected  # type: ignore[union-attr]
    (item_done,) = [e for e in events if e.type == "response.output_item.done"]
    assert [a.model_dump() for a in item_done.item.content[0].annotations] == expected  # type: ignore[union-attr]
    (completed,) = [e for e in events if e.type == "response.completed"]
    for response in (completed.response, final):
        (streamed,) = response.output[0].content  # type: ignore[union-attr]
        assert streamed.text == part.text  # type: ignore[union-attr]
        assert [a.model_dump() for a in streamed.annotations] == expected  # type: ignore[union-attr]
