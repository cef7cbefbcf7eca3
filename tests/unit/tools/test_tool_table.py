"""ToolTable's hosted tools: which web app hint a request sends, and the image size asked."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from chat2api.api.errors import invalid_from_validation
from chat2api.convert.response_request import ResponseInput, read_request
from chat2api.convert.response_schemas import ResponseRequest
from chat2api.convert.tools import ToolTable, with_image_size
from chat2api.errors import InvalidRequest
from chat2api.values import PromptTurn

IMAGE = {"type": "image_generation", "size": "1024x1536"}
FUNCTION = {"type": "function", "name": "f", "parameters": {"type": "object"}}


def read(tools: list[dict[str, Any]], choice: object = None, **more: Any) -> ResponseInput:
    """The pipeline's inputs for a request with ``tools`` (and ``tool_choice`` when given)."""
    body: dict[str, Any] = {"input": "draw", "tools": tools, **more}
    if choice is not None:
        body["tool_choice"] = choice
    try:
        return read_request(ResponseRequest.model_validate(body))
    except ValidationError as exc:
        raise invalid_from_validation(exc.errors()) from exc


def table(*tools: dict[str, Any]) -> ToolTable:
    return read(list(tools)).tools


@pytest.mark.parametrize(
    ("tools", "choice", "hints"),
    [
        ([IMAGE], None, []),
        ([IMAGE], "auto", []),
        ([IMAGE], {"type": "image_generation"}, ["picture_v2"]),
        ([IMAGE], "required", ["picture_v2"]),
        ([IMAGE], {"type": "allowed_tools", "mode": "required"}, []),
        ([IMAGE, FUNCTION], "required", []),  # the function is what is required
        ([IMAGE, FUNCTION], {"type": "image_generation"}, ["picture_v2"]),
        ([IMAGE, {"type": "web_search"}], None, ["search"]),
        ([IMAGE, {"type": "web_search"}], "required", ["search"]),
        ([IMAGE, {"type": "web_search"}], {"type": "image_generation"}, ["picture_v2"]),
        ([{"type": "web_search"}], "none", []),
        ([{"type": "web_search"}], {"type": "allowed_tools", "mode": "none"}, []),
        ([{"type": "web_search"}], "required", ["search"]),
        ([FUNCTION], "required", []),
    ],
)
def test_system_hints(tools: list[dict[str, Any]], choice: object, hints: list[str]) -> None:
    """picture_v2 only when a picture is demanded; search when web_search may be used."""
    assert read(tools, choice).system_hints == hints


def test_required_counts_the_functions_of_additional_tools() -> None:
    """A function sent in an additional_tools item is what "required" asks for: no picture."""
    asked = read(
        [IMAGE],
        "required",
        input=[
            {"type": "additional_tools", "tools": [FUNCTION]},
            {"role": "user", "content": "go"},
        ],
    )
    assert asked.system_hints == [] and asked.choice == "required" and asked.calls_tools


def test_image_tool_is_not_left_out_and_its_size_is_checked() -> None:
    """image_generation is mapped (no warning); a size must be WxH or auto."""
    mapped = table(IMAGE, {"type": "file_search"})
    assert mapped.image == IMAGE and mapped.image_size == "1024x1536"
    assert mapped.left_out == ["file_search"] and mapped.functions == []
    assert table({"type": "image_generation"}).image_size is None
    assert table({"type": "image_generation", "size": "auto"}).image_size is None
    for size in ("1024", "big", 1024, None, "1024x1024 "):
        with pytest.raises(InvalidRequest) as caught:
            table({"type": "image_generation", "size": size})
        assert caught.value.param == "tools[0].size"
        assert "size must look like 1024x1024 (or auto)." in caught.value.message


def test_image_tool_keeps_the_options_it_was_sent_with() -> None:
    """The options chat2api does not read stay in the table's copy and the echo, as sent."""
    sent = {"type": "image_generation", "quality": "high", "background": "transparent"}
    assert table(sent).image == sent
    request = ResponseRequest.model_validate({"input": "x", "tools": [sent, FUNCTION]})
    assert request.echoed("gpt-4o")["tools"] == [sent, FUNCTION]


def test_image_size_goes_in_the_prompt_after_the_instructions() -> None:
    """read_request puts size=WxH after the last user text, behind the tool instructions."""
    asked = read(
        [IMAGE, FUNCTION],
        "auto",
        input=[
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "b"},
        ],
        instructions="be brief",
    )
    assert [turn.role for turn in asked.turns] == ["system", "system", "user", "assistant", "user"]
    assert asked.turns[0].text.startswith("# Tools\n")
    assert [t.text for t in asked.turns[1:]] == ["be brief", "a", "ok", "b size=1024x1536"]


def test_image_choice_needs_the_tool() -> None:
    """tool_choice image_generation without the tool is refused as any unrunnable tool."""
    with pytest.raises(InvalidRequest) as caught:
        read([FUNCTION], {"type": "image_generation"})
    assert (caught.value.param, caught.value.code) == ("tool_choice", "unsupported_tool")


def test_with_image_size_goes_after_the_last_user_turn() -> None:
    """size=WxH is appended to the last user turn only; no size leaves the turns alone."""
    turns = [PromptTurn("system", "be brief"), PromptTurn("user", "a"), PromptTurn("user", "b")]
    assert with_image_size(turns, None) == turns
    assert with_image_size(turns, "1536x1024") == [
        PromptTurn("system", "be brief"),
        PromptTurn("user", "a"),
        PromptTurn("user", "b size=1536x1024"),
    ]
    assert turns[-1].text == "b"  # not changed in place
