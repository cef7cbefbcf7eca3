"""``stop`` on /v1/chat/completions, streamed and not, with scripted upstream chunks."""

from __future__ import annotations

import openai
import pytest

from chat2api.sim import SimServer
from servers import ServiceServer, sdk

REPLY = "Thought: search\nAction: lookup\nObservation: made up\nFinal: 42"
ASK = [{"role": "user", "content": "go"}]


@pytest.fixture
def client(service: ServiceServer, token: str) -> openai.OpenAI:
    """The SDK on the service (both upstream formats)."""
    return sdk(service, token)


def test_non_stream_stops(client: openai.OpenAI, sim: SimServer) -> None:
    """The content ends right before the stop string; finish_reason is stop."""
    sim.state.script(REPLY)
    result = client.chat.completions.create(
        model="gpt-4o", messages=ASK, stop=["\nObservation:", "zzz"]
    )
    assert result.choices[0].message.content == "Thought: search\nAction: lookup"
    assert result.choices[0].finish_reason == "stop"


def test_stream_stop_split_across_chunks(client: openai.OpenAI, sim: SimServer) -> None:
    """A stop string split over upstream chunks is found; nothing after it is sent."""
    at = REPLY.index("Observation") + 4
    sim.state.script(REPLY, chunks=[REPLY[:at], REPLY[at : at + 3], REPLY[at + 3 :]])
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=ASK, stop="\nObservation:", stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "Thought: search\nAction: lookup"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_no_stop_in_text_changes_nothing(client: openai.OpenAI, sim: SimServer) -> None:
    """A stop string that never comes leaves the whole answer, held tails included."""
    sim.state.script("ends with Obs")
    result = client.chat.completions.create(model="gpt-4o", messages=ASK, stop=["Observation"])
    assert result.choices[0].message.content == "ends with Obs"


def test_more_than_four_is_400(client: openai.OpenAI) -> None:
    """Five stop strings are refused with a 400 naming stop."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=ASK, stop=["a", "b", "c", "d", "e"])
    assert caught.value.param == "stop"
    assert "at most 4" in caught.value.message
