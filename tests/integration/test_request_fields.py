"""Request fields: one model by id, refused asks, the legacy functions / function_call."""

from __future__ import annotations

import json

import openai
import pytest

from chat2api.sim import SimServer
from servers import ServiceServer, sdk

ASK = [{"role": "user", "content": "say exactly: hi"}]
FUNCTION = {
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'


@pytest.fixture
def client(service: ServiceServer, token: str) -> openai.OpenAI:
    """The SDK on the service (both upstream formats)."""
    return sdk(service, token)


def test_retrieve_model(client: openai.OpenAI) -> None:
    """GET /v1/models/{id} answers table names and dated family members, 404 otherwise."""
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    dated = client.models.retrieve("gpt-4o-2024-08-06")
    assert dated.id == "gpt-4o-2024-08-06" and dated.owned_by == "chat2api"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("no-such-model")
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("logprobs", True),
        ("top_logprobs", 3),
        ("logit_bias", {"50256": -100}),
        ("modalities", ["text", "audio"]),
        ("audio", {"voice": "alloy", "format": "wav"}),
    ],
)
def test_unhonourable_asks_are_400(client: openai.OpenAI, field: str, value: object) -> None:
    """An explicit ask chat2api cannot honour is a 400 unsupported_parameter naming it."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=ASK, extra_body={field: value})
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == field


def test_default_values_of_those_fields_pass(client: openai.OpenAI) -> None:
    """The same fields at their do-nothing values (as SDKs send them) are accepted."""
    result = client.chat.completions.create(
        model="gpt-4o", messages=ASK, logprobs=False, logit_bias={}, modalities=["text"]
    )
    assert result.choices[0].message.content == "hi"


def test_legacy_functions_non_stream(client: openai.OpenAI, sim: SimServer) -> None:
    """functions + function_call map onto tools; the answer has the legacy function_call."""
    sim.state.script(CALL)
    result = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        functions=[FUNCTION],  # type: ignore[list-item]
        function_call={"name": "get_weather"},
    )
    choice = result.choices[0]
    assert choice.finish_reason == "function_call"
    assert choice.message.tool_calls is None
    assert choice.message.function_call is not None
    assert choice.message.function_call.name == "get_weather"
    assert json.loads(choice.message.function_call.arguments) == {"city": "Oslo"}
    assert "get_weather" in sim.state.last_prompt()[0][1]


def test_legacy_functions_stream_and_history(client: openai.OpenAI, sim: SimServer) -> None:
    """Streamed legacy calls arrive as function_call deltas; a legacy history reads back."""
    sim.state.script(CALL)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "Weather in Oslo?"}],
            functions=[FUNCTION],  # type: ignore[list-item]
            stream=True,
        )
    )
    pieces = [c.choices[0].delta.function_call for c in chunks if c.choices[0].delta.function_call]
    assert pieces[0].name == "get_weather"
    assert json.loads("".join(p.arguments or "" for p in pieces)) == {"city": "Oslo"}
    assert chunks[-1].choices[0].finish_reason == "function_call"
    sim.state.script("It is 3 degrees.")
    final = client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            },
            {"role": "function", "name": "get_weather", "content": '{"temp": 3}'},
        ],
        functions=[FUNCTION],  # type: ignore[list-item]
    )
    assert final.choices[0].message.content == "It is 3 degrees."
    sent = sim.state.last_prompt()
    assert sent[-2][0] == "assistant" and '"city":"Oslo"' in sent[-2][1]
    assert sent[-1][0] == "user" and '{"temp": 3}' in sent[-1][1] and "get_weather" in sent[-1][1]


@pytest.mark.parametrize(
    ("field", "value"),
    [("top_logprobs", 2), ("background", True), ("include", ["message.output_text.logprobs"])],
)
def test_responses_unhonourable_asks(client: openai.OpenAI, field: str, value: object) -> None:
    """The Responses API refuses the same kind of ask with unsupported_parameter."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-4o", input="hi", extra_body={field: value})
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == field
