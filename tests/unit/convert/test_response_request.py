"""The Responses request: its pydantic models, and what the answer pipeline is given."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import ValidationError

from chat2api.api.errors import invalid_from_validation
from chat2api.convert.response_request import ResponseInput, read_request
from chat2api.convert.response_schemas import ResponseRequest
from chat2api.errors import InvalidRequest

SLEEP = {
    "type": "function",
    "name": "sleep",
    "description": "Pause.",
    "parameters": {"type": "object", "properties": {"ms": {"type": "number"}}},
}
EXEC = {
    "type": "custom",
    "name": "exec",
    "description": "Run JavaScript.",
    "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
}
NAMESPACES = [
    {"type": "namespace", "name": "functions", "description": "", "tools": [EXEC]},
    {"type": "namespace", "name": "clock", "description": "Time.", "tools": [SLEEP]},
]
IMAGE = "data:image/png;base64,iVBORw0KGgo="


def parse(body: dict[str, Any]) -> ResponseRequest:
    """The request model, or the 400 the endpoint answers."""
    try:
        return ResponseRequest.model_validate(body)
    except ValidationError as exc:
        raise invalid_from_validation(exc.errors()) from exc


def read(body: dict[str, Any]) -> ResponseInput:
    """The pipeline's inputs for a body, schemas checked as the endpoint does."""
    asked = read_request(parse(body))
    asyncio.run(asked.tools.require_valid())
    return asked


def refusal(body: dict[str, Any]) -> InvalidRequest:
    """The 400 a body gets."""
    with pytest.raises(InvalidRequest) as caught:
        read(body)
    return caught.value


def test_codex_turn_is_read_from_the_models() -> None:
    """Codex's shape: tools in an additional_tools item, a custom call and its output, skips."""
    asked = read(
        {
            "input": [
                {"type": "additional_tools", "role": "developer", "tools": NAMESPACES},
                {"type": "message", "role": "developer", "content": "be careful"},
                {"type": "message", "role": "user",
                 "content": [{"type": "input_text", "text": "go"}]},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "custom_tool_call", "call_id": "c1", "name": "exec", "input": "ü()"},
                {"type": "function_call", "call_id": "c2", "name": "sleep", "namespace": "clock",
                 "arguments": '{"ms": 1}'},
                {"type": "custom_tool_call_output", "call_id": "c1",
                 "output": [{"type": "input_text", "text": "hi"}]},
                {"type": "function_call_output", "call_id": "c2", "output": "slept"},
                {"type": "configuration_update", "reasoning": {"effort": "low"}},
            ],
            "tool_choice": "auto",
        }
    )  # fmt: skip
    assert [f.name for f in asked.tools.functions] == ["exec", "clock__sleep"]
    assert asked.tools.places == ["input[0].tools[0].tools[0]", "input[0].tools[1].tools[0]"]
    roles = [turn.role for turn in asked.turns]
    assert roles == ["system", "system", "user", "assistant", "user", "user"]
    assert "- clock__sleep: Pause." in asked.turns[0].text  # the tool instruction comes first
    calls = [json.loads(line) for line in asked.turns[3].text.splitlines() if line[:1] == "{"]
    assert calls == [
        {"name": "exec", "arguments": {"input": "ü()"}},
        {"name": "clock__sleep", "arguments": {"ms": 1}},
    ]
    assert 'name="exec" id="c1">\nhi\n' in asked.turns[4].text
    assert 'name="clock__sleep" id="c2">\nslept\n' in asked.turns[5].text
    assert asked.choice == "auto" and asked.system_hints == []


def test_instructions_come_after_format_and_tools_and_parts_follow_their_turn() -> None:
    """Format, tool instruction, instructions, then input; attachments keep to their turn."""
    asked = read(
        {
            "instructions": "be brief",
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "look"},
                        {"type": "input_image", "image_url": IMAGE, "detail": "low"},
                    ],
                }
            ],
            "tools": [SLEEP],
            "text": {"format": {"type": "json_object"}},
        }
    )
    assert [t.text.split("\n")[0] for t in asked.turns] == [
        "# Response format",
        "# Tools",
        "be brief",
        "look",
    ]
    assert asked.parts == [
        (3, "input[0].content[1]", {"type": "input_image", "image_url": IMAGE, "detail": "low"})
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "input"),
        ({"input": None}, "input"),
        ({"input": []}, "input"),
        ({"input": 5}, "input"),
        ({"model": 5, "input": "x"}, "model"),
        ({"input": [3]}, "input[0]"),
        ({"input": [{"role": "user", "content": [{"type": "input_text", "text": 5}]}]},
         "input[0].content[0].text"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "function_call_output", "output": {"a": 1}}]}, "input[0].output"),
        ({"input": "x", "tools": [{"type": "namespace", "name": "n",
                                   "tools": [{"type": "function", "name": 5}]}]},
         "tools[0].tools[0].name"),
        ({"input": "x", "tools": ["search"]}, "tools[0]"),
        ({"input": "x", "tool_choice": {"mode": "auto"}}, "tool_choice"),
        ({"input": "x", "tool_choice": "sometimes"}, "tool_choice"),
        ({"input": "x", "text": {"format": {"type": "xml"}}}, "text.format"),
        ({"input": "x", "reasoning": {"effort": "huge"}}, "reasoning.effort"),
        ({"input": "x", "stream": "yes"}, "stream"),
        ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "x", "temperature": 3}, "temperature"),
    ],
)  # fmt: skip
def test_validation_errors_name_the_field(body: dict[str, Any], param: str) -> None:
    """A malformed field is a 400 naming where it is, not the union members it failed."""
    error = refusal(body)
    assert error.status_code == 400
    assert error.param == param, error.message


@pytest.mark.parametrize(
    ("body", "param", "code", "words"),
    [
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]", None,
         "'item_reference' are not supported"),
        ({"input": [{"type": "computer_call_output", "call_id": "c"}]}, "input[0]", None,
         "'computer_call_output' are not supported"),
        ({"input": [{"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]}]},
         "input[0].content[0]", "unsupported_content_part", "'refusal' are not supported"),
        ({"input": "x", "tools": [{"type": "function", "name": "bad name"}]}, "tools[0].name",
         None, "1 to 64 letters"),
        ({"input": "x", "tools": [{"type": "function", "name": "f",
                                   "parameters": {"type": "nope"}}]},
         "tools[0].parameters", None, "not a valid JSON schema"),
        ({"input": "x", "tools": [SLEEP], "tool_choice": {"type": "function", "name": "nap"}},
         "tool_choice.name", None, "'nap', which is not in tools"),
        ({"input": "x", "tools": [{"type": "file_search"}], "tool_choice": {"type": "file_search"}},
         "tool_choice", "unsupported_tool", "'file_search' tool"),
        ({"input": "x", "text": {"format": {"type": "json_schema", "name": "a b"}}},
         "text.format.name", None, "1-64 letters"),
    ],
)  # fmt: skip
def test_what_cannot_be_sent_is_refused_by_name(
    body: dict[str, Any], param: str, code: str | None, words: str
) -> None:
    """Items, parts, tools and choices chat2api cannot send are a 400 naming them."""
    error = refusal(body)
    assert (error.param, error.code) == (param, code)
    assert words in error.message


def test_tool_choice_is_resolved_against_the_offered_names() -> None:
    """A namespaced function, a custom tool and allowed_tools resolve to what the engine takes."""
    body: dict[str, Any] = {"input": "x", "tools": NAMESPACES}
    named = {"type": "function", "name": "sleep", "namespace": "clock"}
    assert read(body | {"tool_choice": named}).choice == "clock__sleep"
    assert read(body | {"tool_choice": {"type": "custom", "name": "exec"}}).choice == "exec"
    allowed = {"type": "allowed_tools", "mode": "required", "tools": []}
    assert read(body | {"tool_choice": allowed}).choice == "required"
    off = read(body | {"tool_choice": "none"})
    assert not off.calls_tools and all("# Tools" not in t.text for t in off.turns)


def test_web_search_is_the_hint_and_hosted_tools_are_left_out() -> None:
    """web_search asks the web app's search (unless tool_choice is none); hosted tools are named."""
    tools = [{"type": "web_search_preview"}, {"type": "file_search"}, {"type": "code_interpreter"}]
    asked = read({"input": "x", "tools": tools, "tool_choice": {"type": "web_search_preview"}})
    assert asked.system_hints == ["search"] and asked.choice == "auto"
    assert asked.tools.functions == [] and not asked.calls_tools
    assert asked.tools.warning() == (
        "hosted tools left out (chat2api cannot run them): file_search, code_interpreter"
    )
    assert read({"input": "x", "tools": tools, "tool_choice": "none"}).system_hints == []


def test_the_echo_is_the_objects_as_sent_without_the_input() -> None:
    """The response repeats tools, text and reasoning with the fields chat2api does not read."""
    tool = SLEEP | {"defer_loading": True}
    schema_format = {"type": "json_schema", "name": "r", "schema": {}}
    body = parse(
        {
            "input": [{"role": "user", "content": "x" * 1000}],
            "tools": [tool, {"type": "mcp", "server_label": "s"}],
            "text": {"format": schema_format, "verbosity": "low"},
            "reasoning": {"effort": "low", "summary": "auto"},
            "tool_choice": "required",
            "metadata": {"k": "v"},
            "prompt_cache_key": "ignored",
        }
    )
    assert body.echoed("gpt-4o") == {
        "model": "gpt-4o",
        "tools": [tool, {"type": "mcp", "server_label": "s"}],
        "text": {"format": schema_format, "verbosity": "low"},
        "reasoning": {"effort": "low", "summary": "auto"},
        "tool_choice": "required",
        "metadata": {"k": "v"},
    }
    assert body.stored and body.parallel and body.reasoning_effort == "low"
