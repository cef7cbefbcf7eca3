"""Responses tool shapes: namespaces, custom (free-form) tools, hosted tools left out."""

from __future__ import annotations

import json

import openai
import pytest

from chat2api.sim import SimServer
from chat2api.sim.generated import CITE_TITLE, CITE_URL
from servers import ServiceServer, sdk

SLEEP = {
    "type": "function",
    "name": "sleep",
    "description": "Pause.",
    "parameters": {
        "type": "object",
        "properties": {"duration_ms": {"type": "number"}},
        "required": ["duration_ms"],
    },
}
EXEC = {
    "type": "custom",
    "name": "exec",
    "description": "Run JavaScript.",
    "format": {"type": "grammar", "syntax": "lark", "definition": "start: /[\\s\\S]+/"},
}
NAMESPACES = [
    {"type": "namespace", "name": "functions", "description": "", "tools": [EXEC]},
    {"type": "namespace", "name": "clock", "description": "Time.", "tools": [SLEEP]},
]
JS = 'const r = await tools.exec_command({cmd: "echo hi"}); text(r);'


def _call(name: str, arguments: dict) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


@pytest.fixture
def client(service: ServiceServer, token: str) -> openai.OpenAI:
    """The SDK on the service (both upstream formats)."""
    return sdk(service, token)


def test_namespaced_function_call(client: openai.OpenAI, sim: SimServer) -> None:
    """A namespace's function is offered as clock__sleep and answered with its namespace."""
    sim.state.script(_call("clock__sleep", {"duration_ms": 5}))
    response = client.responses.create(
        model="gpt-4o",
        input="nap #sim:words=2",
        extra_body={"tools": NAMESPACES},
    )
    (item,) = response.output
    raw = item.model_dump()
    assert raw["type"] == "function_call" and raw["name"] == "sleep"
    assert raw["namespace"] == "clock" and json.loads(raw["arguments"]) == {"duration_ms": 5}
    sent = sim.state.last_prompt()[0][1]
    assert "- clock__sleep: Pause." in sent and "- exec: Run JavaScript." in sent


def test_custom_tool_call_in_additional_tools(client: openai.OpenAI, sim: SimServer) -> None:
    """Codex's shape: tools in an additional_tools item; a custom call comes back as raw input."""
    sim.state.script(_call("exec", {"input": JS}))
    with client.responses.stream(
        model="gpt-4o",
        input=[
            {"type": "additional_tools", "role": "developer", "tools": NAMESPACES},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
            {"type": "configuration_update", "reasoning": {"effort": "low"}},
        ],
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.custom_tool_call_input.done" in kinds
    (item,) = final.output
    assert item.type == "custom_tool_call" and item.name == "exec" and item.input == JS


def test_custom_call_history_round_trip(client: openai.OpenAI, sim: SimServer) -> None:
    """The next turn carries the custom call and its output (text parts) back to the model."""
    sim.state.script("It printed hi.")
    response = client.responses.create(
        model="gpt-4o",
        input=[
            {"type": "additional_tools", "role": "developer", "tools": NAMESPACES},
            {"type": "message", "role": "user", "content": "go"},
            {"type": "custom_tool_call", "call_id": "call_1", "name": "exec", "input": JS},
            {
                "type": "custom_tool_call_output",
                "call_id": "call_1",
                "output": [{"type": "input_text", "text": "hi"}],
            },
            {
                "type": "function_call",
                "call_id": "call_2",
                "name": "sleep",
                "namespace": "clock",
                "arguments": '{"duration_ms": 1}',
            },
            {"type": "function_call_output", "call_id": "call_2", "output": "slept"},
        ],  # type: ignore[list-item]
    )
    assert response.output_text == "It printed hi."
    sent = sim.state.last_prompt()
    assert json.loads(sent[-4][1].splitlines()[1]) == {"name": "exec", "arguments": {"input": JS}}
    assert 'name="exec"' in sent[-3][1] and "\nhi\n" in sent[-3][1]
    assert '"name": "clock__sleep"' in sent[-2][1] and "slept" in sent[-1][1]


def test_hosted_tools_left_out_with_warning(client: openai.OpenAI, sim: SimServer) -> None:
    """Hosted tools are left out and named in X-Chat2API-Warning; the request still works."""
    raw = client.responses.with_raw_response.create(
        model="gpt-4o",
        input="say exactly: fine",
        tools=[
            {"type": "file_search", "vector_store_ids": ["vs_1"]},
            {"type": "code_interpreter", "container": {"type": "auto"}},
        ],
    )
    assert raw.parse().output_text == "fine"
    assert raw.headers["x-chat2api-warning"].endswith(": file_search, code_interpreter")
    assert "# Tools" not in sim.state.last_prompt()[0][1]


def test_web_search_is_the_web_apps_search(client: openai.OpenAI, sim: SimServer) -> None:
    """web_search sends the search hint; cited sources are url_citation annotations (always)."""
    with client.responses.stream(
        model="gpt-4o", input="what happened #sim:cite", tools=[{"type": "web_search"}]
    ) as stream:
        added = [e for e in stream if e.type == "response.output_text.annotation.added"]
        final = stream.get_final_response()
    body = sim.state.last_conversation
    assert isinstance(body, dict) and body["system_hints"] == ["search"]
    (part,) = final.output[0].content  # type: ignore[union-attr]
    (note,) = part.annotations  # type: ignore[union-attr]
    assert note.type == "url_citation"
    assert (note.url, note.title) == (CITE_URL, CITE_TITLE)
    assert part.text[note.start_index : note.end_index] == f"[{CITE_TITLE}]({CITE_URL})"
    assert len(added) == 1 and added[0].annotation.url == CITE_URL  # type: ignore[union-attr]
    plain = client.responses.create(model="gpt-4o", input="what happened #sim:cite")
    assert sim.state.last_conversation["system_hints"] == []  # type: ignore[index]
    assert len(plain.output[0].content[0].annotations) == 1  # type: ignore[union-attr]
