"""Structured output: response_format (Chat) and text.format (Responses), with the simulator."""

from __future__ import annotations

import json

import httpx2 as httpx
import openai
import pytest
from pydantic import BaseModel

from chat2api.sim import SimServer
from chat2api.sim.shaped import BROKEN_JSON, schema_instance
from servers import ServiceServer, sdk


class City(BaseModel):
    name: str
    population: int
    coastal: bool
    districts: list[str]


CITY_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "population": {"type": "integer", "minimum": 1},
    },
    "required": ["name", "population"],
    "additionalProperties": False,
}
FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "city", "schema": CITY_SCHEMA, "strict": True},
}
ASK_JSON = [{"role": "user", "content": "Describe Lisbon. #sim:json=schema"}]
# Records 20 ms apart arrive in separate reads, so each is its own chunk.
ASK_SLOWLY = [{"role": "user", "content": "Describe Lisbon. #sim:json=schema #sim:delay_ms=20"}]


@pytest.fixture
def client(service: ServiceServer, token: str) -> openai.OpenAI:
    """The SDK on the service (both upstream formats)."""
    return sdk(service, token)


def test_parse_gives_the_pydantic_object(client: openai.OpenAI, sim: SimServer) -> None:
    """chat.completions.parse() with a pydantic model gets .parsed; the schema reached the model."""
    result = client.chat.completions.parse(model="gpt-4o", messages=ASK_JSON, response_format=City)
    parsed = result.choices[0].message.parsed
    assert isinstance(parsed, City)
    sent = sim.state.last_prompt()
    assert sent[0][0] == "system" and "JSON Schema:" in sent[0][1]
    schema = json.loads(sent[0][1].split("JSON Schema:", 1)[1])
    assert schema["properties"]["districts"]["type"] == "array"
    assert parsed.model_dump() == schema_instance(schema)
    assert result.choices[0].finish_reason == "stop"


def test_json_object_mode(client: openai.OpenAI, sim: SimServer) -> None:
    """json_object: the answer is a JSON object, taken out of a code fence around it."""
    sim.state.script('Here it is:\n```json\n{"ok": true, "n": 3}\n```')
    result = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "give me json"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(result.choices[0].message.content or "") == {"ok": True, "n": 3}
    assert "JSON object" in sim.state.last_prompt()[0][1]


def test_broken_first_answer_is_corrected(client: openai.OpenAI, sim: SimServer) -> None:
    """Broken JSON first: one correction round, and the client only sees the fitting object."""
    result = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Describe Lisbon. #sim:json=broken"}],
        response_format=FORMAT,
    )
    content = result.choices[0].message.content or ""
    assert json.loads(content) == schema_instance(CITY_SCHEMA)
    assert sim.state.stats.conversations == 2
    sent = sim.state.last_prompt()
    assert sent[-2] == ("assistant", BROKEN_JSON)
    assert sent[-1][0] == "user" and "could not be used" in sent[-1][1]


def test_schema_violation_twice_is_an_error(client: openai.OpenAI, sim: SimServer) -> None:
    """Still not fitting after the correction: 502 invalid_structured_output, never prose."""
    sim.state.script("I'd rather not.")
    sim.state.script('{"name": "Lisbon"}')
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=ASK_JSON, response_format=FORMAT)
    assert caught.value.status_code == 502
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "invalid_structured_output"
    assert "population" in body["message"]
    assert sim.state.stats.conversations == 2


def test_stream_sends_json_as_it_comes(client: openai.OpenAI, sim: SimServer) -> None:
    """A stream whose first attempt fits sends the JSON in several chunks, as they arrive."""
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=ASK_SLOWLY, response_format=FORMAT, stream=True
        )
    )
    pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(pieces) > 3
    assert json.loads("".join(pieces)) == schema_instance(CITY_SCHEMA)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_stream_held_answer_is_corrected(client: openai.OpenAI, sim: SimServer) -> None:
    """A stream whose first attempt opens with prose is held, corrected, and then sent."""
    sim.state.script("Sure! Lisbon has many people.")
    sim.state.script('{"name": "Lisbon", "population": 545000}')
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=ASK_JSON, response_format=FORMAT, stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert json.loads(text) == {"name": "Lisbon", "population": 545000}
    assert "Sure" not in text


def test_stream_streamed_invalid_answer_ends_in_error(
    service: ServiceServer, token: str, sim: SimServer
) -> None:
    """A streamed attempt that then fails its check ends the stream with the error event."""
    sim.state.script('{"name": "Lisbon", "population": "many"}')
    body = {"model": "gpt-4o", "messages": ASK_JSON, "response_format": FORMAT, "stream": True}
    with httpx.Client(timeout=30) as http:
        response = http.post(
            f"{service.openai_base_url}/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    last = json.loads(events[-1])
    assert last["error"]["code"] == "invalid_structured_output"
    assert "[DONE]" not in events


def test_bad_response_format_is_400(client: openai.OpenAI) -> None:
    """An unknown response_format type or a broken schema is a 400 naming the field."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gpt-4o", messages=ASK_JSON, response_format={"type": "yaml"}
        )  # type: ignore[arg-type]
    assert caught.value.param == "response_format.type"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gpt-4o",
            messages=ASK_JSON,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "nope"}},
            },
        )
    assert caught.value.param == "response_format.json_schema.schema"


def test_responses_parse_and_echo(client: openai.OpenAI, sim: SimServer) -> None:
    """responses.parse() with a pydantic text_format gets output_parsed; the format is echoed."""
    result = client.responses.parse(
        model="gpt-4o", input="Describe Lisbon. #sim:json=schema", text_format=City
    )
    assert isinstance(result.output_parsed, City)
    assert result.text is not None and result.text.format is not None
    echoed = result.text.format.model_dump(by_alias=True)
    assert echoed["type"] == "json_schema" and echoed["name"] == "City"
    assert echoed["schema"]["required"] == ["name", "population", "coastal", "districts"]
    assert "JSON Schema:" in sim.state.last_prompt()[0][1]


def test_responses_stream_structured(client: openai.OpenAI, sim: SimServer) -> None:
    """A streamed Responses answer with text.format streams the JSON and completes parsed."""
    with client.responses.stream(
        model="gpt-4o", input=ASK_SLOWLY[0]["content"], text_format=City
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert len(deltas) > 3
    assert isinstance(final.output_parsed, City)
    assert json.loads("".join(deltas)) == final.output_parsed.model_dump()
