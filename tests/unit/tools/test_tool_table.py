"""ToolTable's hosted tools: which web app hint a request sends, and the image size asked."""

from __future__ import annotations

import pytest

from chat2api.convert.tools import ToolTable, with_image_size
from chat2api.errors import InvalidRequest
from chat2api.values import PromptTurn

IMAGE = {"type": "image_generation", "size": "1024x1536"}
FUNCTION = {"type": "function", "name": "f", "parameters": {"type": "object"}}


def table(*tools: dict) -> ToolTable:
    out = ToolTable()
    out.add_tools(list(tools), "tools")
    return out


@pytest.mark.parametrize(
    ("tools", "choice", "hints"),
    [
        ([IMAGE], None, []),
        ([IMAGE], "auto", []),
        ([IMAGE], {"type": "image_generation"}, ["picture_v2"]),
        ([IMAGE], "required", ["picture_v2"]),
        ([IMAGE, FUNCTION], "required", []),  # the function is what is required
        ([IMAGE, FUNCTION], {"type": "image_generation"}, ["picture_v2"]),
        ([IMAGE, {"type": "web_search"}], None, ["search"]),
        ([IMAGE, {"type": "web_search"}], {"type": "image_generation"}, ["picture_v2"]),
        ([{"type": "web_search"}], "none", []),
        ([{"type": "web_search"}], {"type": "allowed_tools", "mode": "none"}, []),
        ([FUNCTION], "required", []),
    ],
)
def test_system_hints(tools: list[dict], choice: object, hints: list[str]) -> None:
    """picture_v2 only when a picture is demanded; search when web_search may be used."""
    assert table(*tools).system_hints(choice) == hints


def test_image_tool_is_not_left_out_and_its_size_is_checked() -> None:
    """image_generation is mapped (no warning); a size must be WxH or auto."""
    mapped = table(IMAGE, {"type": "file_search"})
    assert mapped.image == IMAGE and mapped.image_size == "1024x1536"
    assert mapped.left_out == ["file_search"]
    assert table({"type": "image_generation"}).image_size is None
    assert table({"type": "image_generation", "size": "auto"}).image_size is None
    with pytest.raises(InvalidRequest) as caught:
        table({"type": "image_generation", "size": "1024"})
    assert caught.value.param == "tools[0].size"


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
