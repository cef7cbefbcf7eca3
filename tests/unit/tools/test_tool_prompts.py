"""What chat2api tells the model: instructions, rendered history, the correction turn."""

from __future__ import annotations

import json

import pytest
from toolcase import TOOLS, run

from chat2api.convert.tools import (
    CALL_END,
    CALL_START,
    CallInvalid,
    correction_message,
    render_assistant_tool_calls,
    render_tool_result,
    resolve_tool_choice,
    tool_instructions,
)
from chat2api.errors import InvalidRequest

WEATHER_SCHEMA = json.dumps(TOOLS[0].parameters, separators=(",", ":"))


def test_instructions_describe_every_tool_and_the_syntax() -> None:
    """Each function's name, description and compact schema are in, with the exact syntax."""
    text = tool_instructions(TOOLS, "auto", True)
    assert f"- get_weather: Current weather in a city.\n  parameters: {WEATHER_SCHEMA}" in text
    assert "- now\n" in text
    assert f'{CALL_START}\n{{"name": "NAME", "arguments": {{...}}}}\n{CALL_END}' in text
    assert "one block per call" in text
    assert len(text) < 1500


@pytest.mark.parametrize(
    ("choice", "rule"),
    [
        ("auto", "Call functions only when they help; otherwise answer directly."),
        (None, "Call functions only when they help; otherwise answer directly."),
        ("none", "Do not call any function now: answer in plain text."),
        ("required", "You must call at least one function in this answer."),
        (
            {"type": "function", "function": {"name": "search"}},
            "You must call the function search in this answer.",
        ),
    ],
)
def test_instructions_state_the_tool_choice(choice: object, rule: str) -> None:
    """Each tool_choice becomes its one rule line."""
    text = tool_instructions(TOOLS, choice, True)
    assert rule in text
    others = {
        "Call functions only when they help",
        "Do not call any function now",
        "You must call at least one",
        "You must call the function",
    } - {rule[:25]}
    assert sum(o in text for o in others if not rule.startswith(o)) == 0


def test_instructions_without_parallel_calls() -> None:
    """parallel_tool_calls=false asks for at most one call."""
    text = tool_instructions(TOOLS, "auto", False)
    assert "Make at most one call per answer." in text
    assert "one block per call" not in text


@pytest.mark.parametrize(
    ("choice", "param"),
    [
        ("sometimes", "tool_choice"),
        ({"type": "function", "function": {"name": "missing"}}, "tool_choice.function.name"),
        ({"type": "function"}, "tool_choice"),
        ({"type": "web_search"}, "tool_choice"),
        (3, "tool_choice"),
    ],
)
def test_bad_tool_choice(choice: object, param: str) -> None:
    """An unknown tool_choice is an InvalidRequest on tool_choice."""
    with pytest.raises(InvalidRequest) as caught:
        resolve_tool_choice(choice, TOOLS)
    assert caught.value.param == param


def test_render_assistant_calls() -> None:
    """An assistant turn with calls reads as the text the model would have written."""
    text = render_assistant_tool_calls(
        "Let me check.",
        [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": "{}"}},
        ],
    )
    assert text == (
        "Let me check.\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city":"Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "now", "arguments": {}}\n</tool_call>'
    )


@pytest.mark.parametrize("content", [None, "", "Checking the weather and searching."])
def test_rendered_calls_parse_back_to_the_same_calls(content: str | None) -> None:
    """A rendered assistant turn fed to the parser gives the same content and calls."""
    calls = [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Zürich", "unit": "c"}'},
        },
        {
            "id": "call_b",
            "type": "function",
            "function": {"name": "search", "arguments": '{"query": "a \\"b\\"\\n", "limit": 2}'},
        },
    ]
    merged = run(render_assistant_tool_calls(content, calls))
    assert merged.text.strip() == (content or "")
    assert [(c.name, c.done) for c in merged.calls.values()] == [
        (
            call["function"]["name"],
            json.dumps(
                json.loads(call["function"]["arguments"]), separators=(",", ":"), ensure_ascii=False
            ),
        )
        for call in calls
    ]


def test_render_unparseable_arguments_as_string() -> None:
    """Arguments that are not JSON are shown as a string rather than dropped."""
    text = render_assistant_tool_calls(None, [{"function": {"name": "now", "arguments": "oops"}}])
    assert '"arguments": "oops"' in text


def test_render_tool_result() -> None:
    """A tool message names the function and call id around its content."""
    assert render_tool_result("call_1", "get_weather", '{"temp": 21}') == (
        '<tool_result name="get_weather" id="call_1">\n{"temp": 21}\n</tool_result>'
    )


def test_correction_message_names_the_error() -> None:
    """The correction turn quotes the reason, the syntax, and the tool's schema."""
    invalid = CallInvalid(0, '{"name": "get_weather"}', "arguments: 'city' is a required property")
    text = correction_message(invalid, TOOLS[0])
    assert "arguments: 'city' is a required property" in text
    assert CALL_START in text and CALL_END in text
    assert f"get_weather parameters: {WEATHER_SCHEMA}" in text


def test_correction_message_for_unknown_tool() -> None:
    """Without a tool (unknown name) the correction still carries the reason and syntax."""
    invalid = CallInvalid(0, "", "unknown tool 'x'; the tools are: a, b")
    text = correction_message(invalid, None)
    assert text.startswith("Your function call could not be used: unknown tool 'x'")
    assert "parameters:" not in text
