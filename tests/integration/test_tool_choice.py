"""tool_choice "required" and a named function are enforced with one correction round."""

from __future__ import annotations

import json

import openai
import pytest

from chat2api.sim import SimServer
from servers import ServiceServer, sdk

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
ASK = [{"role": "user", "content": "Weather in Oslo?"}]
WEATHER_CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
TIME_CALL = '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'
NAMED = {"type": "function", "function": {"name": "get_weather"}}


@pytest.fixture
def client(service: ServiceServer, token: str) -> openai.OpenAI:
    """The SDK on the service (both upstream formats)."""
    return sdk(service, token)


def test_required_prose_is_corrected(client: openai.OpenAI, sim: SimServer) -> None:
    """required: a prose answer gets a correction round; the call comes back, no prose."""
    sim.state.script("It is probably cold.")
    sim.state.script(WEATHER_CALL)
    result = client.chat.completions.create(
        model="gpt-4o", messages=ASK, tools=[WEATHER, TIME], tool_choice="required"
    )
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert sim.state.stats.conversations == 2
    sent = sim.state.last_prompt()
    assert sent[-2] == ("assistant", "It is probably cold.")
    assert "tool_choice requires calling a function" in sent[-1][1]


def test_named_other_function_is_corrected(client: openai.OpenAI, sim: SimServer) -> None:
    """A named tool_choice: a call to another function is corrected to the named one."""
    sim.state.script(TIME_CALL)
    sim.state.script(WEATHER_CALL)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=ASK, tools=[WEATHER, TIME], tool_choice=NAMED, stream=True
        )
    )
    calls = [c for ch in chunks for c in ch.choices[0].delta.tool_calls or []]
    assert [c.function.name for c in calls if c.function and c.function.name] == ["get_weather"]
    assert "".join(c.function.arguments or "" for c in calls if c.function) == '{"city":"Oslo"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert "not get_time" in sim.state.last_prompt()[-1][1]


def test_still_no_call_is_an_error(client: openai.OpenAI, sim: SimServer) -> None:
    """No call after the correction either: 502 tool_choice_not_followed, not the prose."""
    sim.state.script("No.")
    sim.state.script("Still no.")
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model="gpt-4o", messages=ASK, tools=[WEATHER], tool_choice=NAMED
        )
    assert caught.value.status_code == 502
    assert caught.value.code == "tool_choice_not_followed"
    assert caught.value.param == "tool_choice"


def test_required_with_parallel_calls(client: openai.OpenAI, sim: SimServer) -> None:
    """required keeps parallel calls (both) and, with parallel_tool_calls false, the first."""
    sim.state.script(WEATHER_CALL + "\n" + TIME_CALL)
    both = client.chat.completions.create(
        model="gpt-4o", messages=ASK, tools=[WEATHER, TIME], tool_choice="required"
    )
    names = [c.function.name for c in both.choices[0].message.tool_calls or []]
    assert names == ["get_weather", "get_time"]
    sim.state.script(WEATHER_CALL + "\n" + TIME_CALL)
    one = client.chat.completions.create(
        model="gpt-4o",
        messages=ASK,
        tools=[WEATHER, TIME],
        tool_choice="required",
        parallel_tool_calls=False,
    )
    assert [c.function.name for c in one.choices[0].message.tool_calls or []] == ["get_weather"]


def test_responses_required(client: openai.OpenAI, sim: SimServer) -> None:
    """Responses tool_choice required: prose first, corrected into a function_call item."""
    sim.state.script("Let me think.")
    sim.state.script(WEATHER_CALL)
    result = client.responses.create(
        model="gpt-4o",
        input="Weather in Oslo?",
        tools=[{"type": "function", **WEATHER["function"]}],  # type: ignore[typeddict-item]
        tool_choice="required",
    )
    (item,) = result.output
    assert item.type == "function_call"
    assert item.name == "get_weather" and json.loads(item.arguments) == {"city": "Oslo"}
