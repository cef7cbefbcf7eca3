"""Function calling on /v1/chat/completions, with the simulator's scripted answers."""

from __future__ import annotations

import json

import openai
import pytest

from chat2api.sim import SimServer
from servers import ServiceServer, sdk

ALL_ERAS = True  # each test runs against the simulator in every era (conftest.ERAS)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["c", "f"]},
            },
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string"}},
            "required": ["zone"],
        },
    },
}
ASK = [{"role": "user", "content": "What's the weather in Paris?"}]
CALL = (
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n'
    "</tool_call>"
)


@pytest.fixture
def client(service: ServiceServer, token: str) -> openai.OpenAI:
    """The SDK on the service (both upstream formats)."""
    return sdk(service, token)


def _stream(client: openai.OpenAI, **kwargs: object) -> list:
    return list(client.chat.completions.create(model="gpt-4o", stream=True, **kwargs))


def _merged_calls(chunks: list) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for call in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += call.id or ""
            if call.function is not None:
                entry["name"] += call.function.name or ""
                entry["arguments"] += call.function.arguments or ""
    return calls


def test_non_stream_tool_call(client: openai.OpenAI, sim: SimServer) -> None:
    """A scripted call comes back as message.tool_calls with finish_reason tool_calls."""
    sim.state.script("Let me check.\n" + CALL)
    result = client.chat.completions.create(model="gpt-4o", messages=ASK, tools=[WEATHER])
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    (call,) = choice.message.tool_calls or []
    assert call.id.startswith("call_") and len(call.id) == 29
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "c"}
    prompt = sim.state.last_prompt()
    assert prompt[0][0] == "system" and "get_weather" in prompt[0][1]
    assert "<tool_call>" in prompt[0][1]


def test_stream_tool_call_split_everywhere(client: openai.OpenAI, sim: SimServer) -> None:
    """Calls split across upstream chunks stream as tool_calls deltas, never as text."""
    text = "Sure." + "\n" + CALL
    sim.state.script(text, chunks=[text[i : i + 3] for i in range(0, len(text), 3)])
    chunks = _stream(client, messages=ASK, tools=[WEATHER])
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert content.strip() == "Sure."
    assert "<tool_call>" not in content and "get_weather" not in content
    calls = _merged_calls(chunks)
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather" and calls[0]["id"].startswith("call_")
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "unit": "c"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_two_parallel_calls(client: openai.OpenAI, sim: SimServer) -> None:
    """Two call blocks become tool calls 0 and 1; with parallel_tool_calls false, one."""
    two = (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": {"zone": "CET"}}\n</tool_call>'
    )
    sim.state.script(two)
    calls = _merged_calls(_stream(client, messages=ASK, tools=[WEATHER, TIME]))
    assert [calls[i]["name"] for i in (0, 1)] == ["get_weather", "get_time"]
    assert json.loads(calls[1]["arguments"]) == {"zone": "CET"}
    sim.state.script(two)
    result = client.chat.completions.create(
        model="gpt-4o",
        messages=ASK,
        tools=[WEATHER, TIME],
        parallel_tool_calls=False,
    )
    assert [c.function.name for c in result.choices[0].message.tool_calls or []] == ["get_weather"]


def test_call_in_code_fence_is_text(client: openai.OpenAI, sim: SimServer) -> None:
    """A call block inside a code fence is an example, returned as text."""
    fenced = "Here is the syntax:\n```\n" + CALL + "\n```\nThat's all."
    sim.state.script(fenced)
    result = client.chat.completions.create(model="gpt-4o", messages=ASK, tools=[WEATHER])
    assert result.choices[0].finish_reason == "stop"
    assert result.choices[0].message.tool_calls is None
    assert result.choices[0].message.content == fenced


def test_invalid_json_is_repaired(client: openai.OpenAI, sim: SimServer) -> None:
    """Unambiguous JSON mistakes (single quotes, trailing comma) are repaired in place."""
    sim.state.script(
        "<tool_call>\n{'name': 'get_weather', 'arguments': {'city': 'Rome', 'unit': 'f',},}\n"
        "</tool_call>"
    )
    result = client.chat.completions.create(model="gpt-4o", messages=ASK, tools=[WEATHER])
    (call,) = result.choices[0].message.tool_calls or []
    assert json.loads(call.function.arguments) == {"city": "Rome", "unit": "f"}
    assert sim.state.stats.conversations == 1


def test_schema_violation_gets_one_correction(client: openai.OpenAI, sim: SimServer) -> None:
    """A call breaking the schema makes one correction round trip; the fixed call is used."""
    sim.state.script(
        '<tool_call>\n{"name": "get_weather", "arguments": {"unit": "k"}}\n</tool_call>'
    )
    sim.state.script(CALL)
    chunks = _stream(client, messages=ASK, tools=[WEATHER])
    calls = _merged_calls(chunks)
    assert list(calls) == [0]
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "unit": "c"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert sim.state.stats.conversations == 2
    prompt = sim.state.last_prompt()
    assert prompt[-2][0] == "assistant" and '"unit": "k"' in prompt[-2][1]
    assert prompt[-1][0] == "user" and "could not be used" in prompt[-1][1]


def test_failed_correction_gives_text(client: openai.OpenAI, sim: SimServer) -> None:
    """When the correction is unusable too, the client gets the text with finish stop."""
    bad = '<tool_call>\n{"name": "get_weather", "arguments": {"unit": "k"}}\n</tool_call>'
    sim.state.script(bad)
    sim.state.script(bad)
    result = client.chat.completions.create(model="gpt-4o", messages=ASK, tools=[WEATHER])
    assert result.choices[0].finish_reason == "stop"
    assert result.choices[0].message.tool_calls is None
    assert '"unit": "k"' in (result.choices[0].message.content or "")
    assert sim.state.stats.conversations == 2


def test_two_step_tool_loop(client: openai.OpenAI, sim: SimServer) -> None:
    """call → tool result → final answer, with the result carried back to the model."""
    sim.state.script(CALL)
    first = client.chat.completions.create(model="gpt-4o", messages=ASK, tools=[WEATHER])
    call = (first.choices[0].message.tool_calls or [])[0]
    sim.state.script("It is 21 °C in Paris.")
    messages = [
        *ASK,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'},
    ]
    final = client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER])
    assert final.choices[0].message.content == "It is 21 °C in Paris."
    assert final.choices[0].finish_reason == "stop"
    prompt = sim.state.last_prompt()
    assert prompt[-2][0] == "assistant" and "<tool_call>" in prompt[-2][1]
    assert prompt[-1][0] == "user"
    assert call.id in prompt[-1][1] and '{"temp": 21}' in prompt[-1][1]


def test_tool_choice_none_sends_no_instruction(client: openai.OpenAI, sim: SimServer) -> None:
    """tool_choice none describes no tools and takes the answer as text."""
    sim.state.script("plain " + CALL)
    result = client.chat.completions.create(
        model="gpt-4o",
        messages=ASK,
        tools=[WEATHER],
        tool_choice="none",
    )
    assert result.choices[0].message.tool_calls is None
    assert all("<tool_call>" not in text for _, text in sim.state.last_prompt()[:1])


def test_named_tool_choice_in_instruction(client: openai.OpenAI, sim: SimServer) -> None:
    """A named tool_choice is written into the instruction."""
    sim.state.script(CALL)
    client.chat.completions.create(
        model="gpt-4o",
        messages=ASK,
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert "must call the function get_weather" in sim.state.last_prompt()[0][1]


@pytest.mark.parametrize(
    ("tools", "param"),
    [
        ([{"type": "web_search"}], "tools[0].type"),
        ([{"type": "function", "function": {"parameters": {}}}], "tools[0].function.name"),
    ],
)
def test_bad_tools_are_400(client: openai.OpenAI, tools: list, param: str) -> None:
    """Unsupported or malformed tools are refused with a 400 naming them."""
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4o", messages=ASK, tools=tools)
    assert info.value.param == param
