"""The Responses image_generation tool is the web app's image generation."""

from __future__ import annotations

import base64
from typing import Any

import httpx2 as httpx
import openai
import pytest

from chat2api.sim import SimServer
from chat2api.sim.generated import PNG_SIGNATURE, image_reply_text, png_size
from servers import ServiceFactory, ServiceServer, sdk

DRAW: Any = {"type": "image_generation"}
IMAGE_EVENTS = [
    "response.output_item.added",
    "response.image_generation_call.in_progress",
    "response.image_generation_call.generating",
    "response.image_generation_call.completed",
    "response.output_item.done",
]


@pytest.fixture
def client(service: ServiceServer, token: str) -> openai.OpenAI:
    """The SDK on the service (both upstream formats)."""
    return sdk(service, token)


def _drawn(sim: SimServer) -> bytes:
    (data,) = [f.data or b"" for f in sim.state.files.values() if f.kind in ("image_gen", "dalle")]
    return data


def test_forced_picture_is_an_image_generation_call(client: openai.OpenAI, sim: SimServer) -> None:
    """tool_choice image_generation sends picture_v2; the item holds the PNG, base64."""
    raw = client.responses.with_raw_response.create(
        model="gpt-4o",
        input="a lighthouse at dusk",
        tools=[{"type": "image_generation", "size": "1536x1024", "quality": "high"}],
        tool_choice={"type": "image_generation"},
    )
    assert "x-chat2api-warning" not in raw.headers
    response = raw.parse()
    body = sim.state.last_conversation
    assert isinstance(body, dict) and body["system_hints"] == ["picture_v2"]
    assert sim.state.last_prompt()[-1] == ("user", "a lighthouse at dusk size=1536x1024")
    (item,) = response.output
    assert item.type == "image_generation_call"
    assert item.id.startswith("ig_") and item.status == "completed"
    assert item.result is not None
    data = base64.b64decode(item.result)
    assert data.startswith(PNG_SIGNATURE) and data == _drawn(sim)
    assert png_size(data) == (1536, 1024)
    assert (item.size, item.output_format) == ("1536x1024", "png")
    assert item.revised_prompt == "a lighthouse at dusk"
    assert response.status == "completed" and response.output_text == ""


def test_streamed_picture_events(client: openai.OpenAI, sim: SimServer) -> None:
    """Streamed: added, in_progress, generating, completed, done (no partial images)."""
    with client.responses.stream(
        model="gpt-4o",
        input="a red kite",
        tools=[{"type": "image_generation", "partial_images": 2}],
        tool_choice={"type": "image_generation"},
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[2:] == [*IMAGE_EVENTS, "response.completed"]
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(len(events)))
    item_ids = {e.item_id for e in events if e.type.startswith("response.image_generation_call")}
    (item,) = final.output
    assert item_ids == {item.id}
    assert events[2].item.status == "in_progress"  # type: ignore[union-attr]
    assert item.type == "image_generation_call" and item.result is not None
    assert base64.b64decode(item.result) == _drawn(sim)
    assert base64.b64decode(item.result).startswith(PNG_SIGNATURE)
    done = events[-2]
    assert done.type == "response.output_item.done" and done.item == item


def test_the_model_draws_when_it_sees_fit(client: openai.OpenAI, sim: SimServer) -> None:
    """tool_choice auto: no hint; a picture the model draws is an item before its text."""
    prompt = "a watercolour fox #sim:image"
    with client.responses.stream(model="gpt-4o", input=prompt, tools=[DRAW]) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    body = sim.state.last_conversation
    assert isinstance(body, dict) and body["system_hints"] == []
    image, message = final.output
    assert image.type == "image_generation_call" and image.result is not None
    assert base64.b64decode(image.result) == _drawn(sim)
    assert image.revised_prompt == "a watercolour fox"
    assert message.type == "message"
    assert final.output_text == image_reply_text("a watercolour fox")  # no link to the image
    first_text = kinds.index("response.output_text.delta")
    assert kinds.index("response.image_generation_call.completed") < first_text
    plain = client.responses.create(model="gpt-4o", input="say exactly: no picture", tools=[DRAW])
    assert [i.type for i in plain.output] == ["message"]
    assert plain.output_text == "no picture"


def test_required_with_only_the_image_tool_draws(client: openai.OpenAI, sim: SimServer) -> None:
    """tool_choice required with image_generation the only tool demands a picture."""
    response = client.responses.create(
        model="gpt-4o", input="a pear", tools=[DRAW], tool_choice="required"
    )
    assert sim.state.last_conversation["system_hints"] == ["picture_v2"]  # type: ignore[index]
    assert [i.type for i in response.output] == ["image_generation_call"]


def test_bad_image_tool_asks(client: openai.OpenAI) -> None:
    """A malformed size is a 400 naming it; naming the tool without sending it is refused."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="gpt-4o", input="x", tools=[{"type": "image_generation", "size": "big"}]
        )
    assert caught.value.param == "tools[0].size"
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="gpt-4o", input="x", tool_choice={"type": "image_generation"})
    assert refused.value.code == "unsupported_tool"


def test_failed_download_is_a_typed_error(
    make_service: ServiceFactory, sim: SimServer, token: str
) -> None:
    """The image bytes cannot be fetched: a 502 envelope, or response.failed when streamed."""
    service = make_service(EXPORT_PROXY_URL="http://127.0.0.1:9")  # nothing listens there
    ask: dict[str, Any] = {
        "model": "gpt-4o",
        "input": "a blue door",
        "tools": [DRAW],
        "tool_choice": {"type": "image_generation"},
    }
    url = service.openai_base_url + "/responses"
    headers = {"Authorization": f"Bearer {token}"}
    plain = httpx.post(url, json=ask, headers=headers, timeout=60)
    assert plain.status_code == 502
    error = plain.json()["error"]
    assert error["code"] and error["message"]
    client = sdk(service, token)
    with client.responses.stream(**ask) as stream:
        events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[2:5] == IMAGE_EVENTS[:3]
    assert kinds[-1] == "response.failed"
    failed = events[-1].response  # type: ignore[union-attr]
    assert failed.error is not None and failed.error.code == error["code"]
    assert error["code"] == "upstream_connect_error"
    (item,) = failed.output
    assert item.type == "image_generation_call" and item.status == "failed"


def test_login_free_gets_a_clear_400_for_images(make_service: ServiceFactory) -> None:
    """Without an account (spec §8.3: no image generation logged out) both image paths say so."""
    service = make_service()  # no AUTHORIZATION, empty pool: the login-free flow
    client = openai.OpenAI(base_url=service.openai_base_url, api_key="anything", max_retries=0)
    with pytest.raises(openai.BadRequestError) as drawn:
        client.images.generate(prompt="a lighthouse")
    with pytest.raises(openai.BadRequestError) as tool:
        client.responses.create(
            model="gpt-4o", input="a lighthouse", tools=[DRAW], tool_choice=DRAW
        )
    for refused in (drawn.value, tool.value):
        assert refused.code == "needs_account"
        assert "need a ChatGPT account" in refused.message
