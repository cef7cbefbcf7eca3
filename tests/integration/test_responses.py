"""The Responses API with the official SDK: text, reasoning, function calls, state."""

from __future__ import annotations

import json

import openai
import pytest
import toktok
from openai.types import responses as rtypes

from chat2api.sim import SimServer, mint_access_token, reasoning_text, reply_text
from servers import ServiceServer, sdk

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


@pytest.fixture
def client(service: ServiceServer, token: str) -> openai.OpenAI:
    """The SDK on the service (both upstream formats)."""
    return sdk(service, token)


def _conversation_bodies(sim: SimServer) -> list[dict]:
    return [r["body"] for r in sim.state.requests if r["path"].endswith("/conversation")]


def test_create_text(client: openai.OpenAI) -> None:
    """A plain response has one message item whose text is the answer, and usage."""
    response = client.responses.create(model="gpt-4o", input="say exactly: Bonjour")
    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status == "completed"
    assert response.output_text == "Bonjour"
    (item,) = response.output
    assert item.type == "message" and item.role == "assistant" and item.status == "completed"
    expected = toktok.batch_count(["Bonjour"], "o200k_base")[0]
    assert response.usage is not None and response.usage.output_tokens == expected
    assert response.usage.total_tokens == response.usage.input_tokens + expected


def test_stream_events_parse_as_sdk_types(client: openai.OpenAI) -> None:
    """A stream is the Responses event sequence; every event is one of the SDK's types."""
    events = list(
        client.responses.create(model="gpt-4o", input="tell me #sim:words=12", stream=True)
    )
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[2:4] == ["response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    for event in events:
        assert type(event).__module__.startswith("openai.types.responses."), type(event)
    text = "".join(e.delta for e in events if isinstance(e, rtypes.ResponseTextDeltaEvent))
    assert text == reply_text("tell me", 12)
    assert events[-1].response.output_text == text


def test_reasoning_summary(client: openai.OpenAI) -> None:
    """A reasoning model's thoughts come as a reasoning item with summary text, first."""
    response = client.responses.create(model="o3", input="why", reasoning={"effort": "high"})
    reasoning, message = response.output
    assert reasoning.type == "reasoning"
    assert reasoning.summary[0].text == reasoning_text("why")
    assert message.type == "message"
    assert response.output_text == reply_text("why", 30)
    events = list(client.responses.create(model="o3", input="why", stream=True))
    summary = "".join(
        e.delta for e in events if isinstance(e, rtypes.ResponseReasoningSummaryTextDeltaEvent)
    )
    assert summary == reasoning_text("why")


def test_function_call_and_result(client: openai.OpenAI, sim: SimServer) -> None:
    """A call is a function_call item; its output continues the conversation upstream."""
    sim.state.script(CALL)
    first = client.responses.create(model="gpt-4o", input="Weather in Paris?", tools=[WEATHER])
    (call,) = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    sim.state.script("It is sunny in Paris.")
    second = client.responses.create(
        model="gpt-4o",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[WEATHER],
    )
    assert second.output_text == "It is sunny in Paris."
    first_body, second_body = _conversation_bodies(sim)
    # The simulator refuses unknown conversations and parents, so an answer proves both.
    assert second_body["conversation_id"] and second_body["parent_message_id"]
    assert "conversation_id" not in first_body
    assert second_body["history_and_training_disabled"] is False
    sent = [m["content"]["parts"][0] for m in second_body["messages"]]
    assert not any("Weather in Paris?" in text for text in sent)  # only the new input
    assert any(call.call_id in text and "sunny" in text for text in sent)
    # ...while the model saw the whole conversation, kept upstream.
    assert any("Weather in Paris?" in text for _, text in sim.state.last_prompt())
    assert not any("Weather in Paris?" in text for _, text in sim.state.last_request_messages())
    assert first_body["history_and_training_disabled"] is False


def test_stream_function_call_events(client: openai.OpenAI, sim: SimServer) -> None:
    """A streamed call has arguments delta/done events and ends completed."""
    sim.state.script(CALL)
    events = list(
        client.responses.create(model="gpt-4o", input="Paris?", tools=[WEATHER], stream=True)
    )
    deltas = [e for e in events if isinstance(e, rtypes.ResponseFunctionCallArgumentsDeltaEvent)]
    (done,) = [e for e in events if isinstance(e, rtypes.ResponseFunctionCallArgumentsDoneEvent)]
    assert "".join(d.delta for d in deltas) == done.arguments
    assert json.loads(done.arguments) == {"city": "Paris"}
    assert events[-1].type == "response.completed"


def test_retrieve_and_delete(client: openai.OpenAI, service: ServiceServer) -> None:
    """A stored response can be retrieved and deleted, by its own key only."""
    created = client.responses.create(model="gpt-4o", input="say exactly: kept")
    again = client.responses.retrieve(created.id)
    assert again.id == created.id and again.output_text == "kept"
    stranger = sdk(service, mint_access_token(account_id="someone-else"))
    with pytest.raises(openai.NotFoundError):
        stranger.responses.retrieve(created.id)
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_store_false_keeps_nothing(client: openai.OpenAI, sim: SimServer) -> None:
    """store: false sends a temporary chat and saves no response."""
    created = client.responses.create(model="gpt-4o", input="say exactly: gone", store=False)
    assert created.output_text == "gone"
    (body,) = _conversation_bodies(sim)
    assert body["history_and_training_disabled"] is True
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_max_output_tokens_is_incomplete(client: openai.OpenAI) -> None:
    """Cut at max_output_tokens, the response is incomplete with that reason."""
    response = client.responses.create(
        model="gpt-4o", input="long #sim:words=80", max_output_tokens=16
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None and response.usage.output_tokens == 16


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {
                "input": "x",
                "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}],
                "tool_choice": {"type": "file_search"},
            },
            "tool_choice",
        ),
        ({"input": "x", "previous_response_id": "resp_nope"}, "previous_response_id"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            "input[0].content[0]",
        ),
        ({}, "input"),
    ],
)
def test_bad_requests(client: openai.OpenAI, body: dict, param: str) -> None:
    """Bad requests are refused with the parameter named."""
    with pytest.raises(openai.APIStatusError) as info:
        client.responses.create(model="gpt-4o", **body)
    assert info.value.status_code in (400, 404)
    assert isinstance(info.value.body, dict) and info.value.body["param"] == param


def test_input_image_and_file(client: openai.OpenAI, sim: SimServer) -> None:
    """input_image and input_file parts are uploaded and attached like chat parts."""
    import base64

    from test_files import DATA_URL, IMAGE

    response = client.responses.create(
        model="gpt-4o",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "say exactly: got them"},
                    {"type": "input_image", "image_url": DATA_URL},
                    {
                        "type": "input_file",
                        "filename": "notes.txt",
                        "file_data": base64.b64encode(b"hello notes").decode(),
                    },
                ],
            }
        ],
    )
    assert response.output_text == "got them"
    names = {a["name"]: a for a in sim.state.last_attachments()}
    assert names["notes.txt"]["size"] == 11
    (pointer,) = sim.state.last_image_parts()
    assert pointer["size_bytes"] == len(IMAGE)


def test_sdk_stream_helper_with_previous_response(client: openai.OpenAI, sim: SimServer) -> None:
    """responses.stream parses every event and continues a previous response."""
    first = client.responses.create(model="gpt-4o", input="say exactly: one")
    with client.responses.stream(
        model="gpt-4o", input="say exactly: two", previous_response_id=first.id
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert final.output_text == "two"
    assert final.previous_response_id == first.id
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert any("one" in text for _, text in sim.state.last_prompt())


def test_failure_mid_stream_is_response_failed(client: openai.OpenAI) -> None:
    """An upstream failure after the answer began ends the stream with response.failed."""
    events = list(
        client.responses.create(
            model="gpt-4o", input="x #sim:words=40 #sim:fault=truncated", stream=True
        )
    )
    last = events[-1]
    assert last.type == "response.failed"
    assert last.response.status == "failed"
    assert last.response.error is not None and last.response.error.code == "upstream_unavailable"
