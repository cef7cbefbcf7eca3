"""The official ``openai`` Python SDK, as an application uses it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
from pydantic import BaseModel

from chat2api.sim import SimServer, mint_access_token
from servers import ServiceServer

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}


class Recipe(BaseModel):
    title: str
    minutes: int
    steps: list[str]


@pytest.fixture
def client(app: ServiceServer) -> Iterator[openai.OpenAI]:
    """The SDK with its defaults, pointed at chat2api."""
    with openai.OpenAI(base_url=app.openai_base_url, api_key=mint_access_token()) as sdk:
        yield sdk


def test_chat_and_stream(client: openai.OpenAI, sim: SimServer) -> None:
    """A completion and a stream give the exact text, with usage."""
    result = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "say exactly: one two"}]
    )
    assert result.choices[0].message.content == "one two"
    assert result.usage is not None and result.usage.completion_tokens == 2
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "say exactly: three four"}],
            stream=True,
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "three four"


def test_parse_with_pydantic(client: openai.OpenAI, sim: SimServer) -> None:
    """chat.completions.parse() and responses.parse() give the pydantic objects."""
    chat = client.chat.completions.parse(
        model="gpt-4o",
        messages=[{"role": "user", "content": "A quick recipe. #sim:json=schema"}],
        response_format=Recipe,
    )
    recipe = chat.choices[0].message.parsed
    assert isinstance(recipe, Recipe) and recipe.steps and recipe.minutes == 42
    response = client.responses.parse(
        model="gpt-4o", input="A quick recipe. #sim:json=schema", text_format=Recipe
    )
    assert response.output_parsed == recipe


def test_tools_loop(client: openai.OpenAI, sim: SimServer) -> None:
    """A strict tool is called, its result is sent back, the model answers from it."""
    ask = [{"role": "user", "content": "Weather in Oslo? #sim:call=get_weather"}]
    first = client.chat.completions.create(model="gpt-4o", messages=ask, tools=[WEATHER])
    (call,) = first.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    assert set(json.loads(call.function.arguments)) == {"city"}
    sim.state.script("It is 3 degrees in Oslo.")
    final = client.chat.completions.create(
        model="gpt-4o",
        messages=[
            *ask,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "3 degrees"},
        ],
        tools=[WEATHER],
    )
    assert final.choices[0].message.content == "It is 3 degrees in Oslo."
    assert "3 degrees" in sim.state.last_prompt()[-1][1]
