"""parse_tools (the request's tools field) and validate_arguments."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from chat2api.convert.tools import FunctionTool, parse_tools, validate_arguments
from chat2api.convert.tools.schema import MAX_SCHEMA_DEPTH, MAX_TOOLS, measure
from chat2api.errors import InvalidRequest


def parse(raw: object) -> list[FunctionTool]:
    """``parse_tools`` run to completion."""
    return asyncio.run(parse_tools(raw))


def fn(**function: Any) -> dict[str, Any]:
    """A function tool entry with the given function fields."""
    return {"type": "function", "function": function}


def test_parse_full_entry() -> None:
    """Every field of a function tool is read."""
    params = {"type": "object", "properties": {"q": {"type": "string"}}}
    [tool] = parse([fn(name="search", description="Find.", parameters=params, strict=True)])
    assert (tool.name, tool.description, tool.parameters, tool.strict) == (
        "search",
        "Find.",
        params,
        True,
    )


def test_parse_defaults() -> None:
    """Description, parameters and strict are optional."""
    [tool] = parse([fn(name="now")])
    assert tool.description == ""
    assert tool.parameters == {"type": "object", "properties": {}}
    assert tool.strict is False


def test_empty_tools_is_no_tools() -> None:
    """An empty tools array means no tools, not an error."""
    assert parse([]) == []


@pytest.mark.parametrize(
    ("raw", "param", "message"),
    [
        ({"type": "function"}, "tools", "array"),
        (["x"], "tools[0]", "must be an object"),
        (
            [{"type": "web_search"}],
            "tools[0].type",
            "tools[0].type 'web_search' is not supported; only 'function' tools",
        ),
        (
            [fn(name="a"), {"type": "code_interpreter"}],
            "tools[1].type",
            "'code_interpreter' is not supported",
        ),
        ([{"function": {"name": "a"}}], "tools[0].type", "missing"),
        ([{"type": "function"}], "tools[0].function", "must be an object"),
        ([fn(description="x")], "tools[0].function.name", "1 to 64"),
        ([fn(name="has space")], "tools[0].function.name", "1 to 64"),
        ([fn(name="a" * 65)], "tools[0].function.name", "1 to 64"),
        ([fn(name="a", description=3)], "tools[0].function.description", "string"),
        ([fn(name="a", parameters=[])], "tools[0].function.parameters", "JSON schema object"),
        (
            [fn(name="a", parameters={"type": "nonsense"})],
            "tools[0].function.parameters",
            "not a valid JSON schema",
        ),
        ([fn(name="a", strict="yes")], "tools[0].function.strict", "boolean"),
        ([fn(name="a"), fn(name="a")], "tools[1].function.name", "declared twice"),
    ],
)
def test_parse_errors_name_the_param(raw: Any, param: str, message: str) -> None:
    """A bad entry is an InvalidRequest whose param points at it."""
    with pytest.raises(InvalidRequest) as caught:
        parse(raw)
    assert caught.value.param == param
    assert message in caught.value.message
    assert caught.value.status_code == 400


SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer", "minimum": 1},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["city"],
    "additionalProperties": False,
}
TOOL = FunctionTool("forecast", "", SCHEMA)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"city": "Oslo"}, None),
        ({"city": "Oslo", "days": 3, "tags": ["a"]}, None),
        ({}, "arguments: 'city' is a required property"),
        ({"city": 1}, "arguments.city: 1 is not of type 'string'"),
        ({"city": "x", "days": 0}, "arguments.days: 0 is less than the minimum of 1"),
        ({"city": "x", "tags": ["a", 2]}, "arguments.tags[1]: 2 is not of type 'string'"),
        (
            {"city": "x", "extra": 1},
            "arguments: Additional properties are not allowed ('extra' was unexpected)",
        ),
    ],
)
def test_validate_arguments(args: dict[str, Any], error: str | None) -> None:
    """Arguments are checked against the schema; the error names the path."""
    assert validate_arguments(TOOL, args) == error


def test_validation_message_is_bounded() -> None:
    """A huge offending value does not make a huge message."""
    error = validate_arguments(TOOL, {"city": ["x" * 5000]})
    assert error is not None
    assert len(error) <= 300


def _nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth - 1):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def _unsound(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with a type no JSON schema has: the meta-schema check refuses it."""
    return {**schema, "type": "no-such-type"}


def test_schema_size_and_depth_are_bounded() -> None:
    """Too many tools, too many schema values or too deep a schema: a 400 naming the param.

    Each oversized schema is also invalid, so a meta-schema check run before the size
    check would refuse it with its own message: the size message proves it never ran.
    """
    wide = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(20_000)}}
    cases = [
        ([fn(name=f"f{i}") for i in range(MAX_TOOLS + 1)], "tools", "at most 128 tools"),
        (
            [fn(name="a", parameters=_unsound(wide))],
            "tools[0].function.parameters",
            "more than 5000",
        ),
        (
            [fn(name="a", parameters=_unsound(_nested(150)))],
            "tools[0].function.parameters",
            "deeper",
        ),
        (
            [
                fn(name="a", parameters=_unsound({})),  # sizes of all tools come before any check
                fn(name="b", parameters=_nested(MAX_SCHEMA_DEPTH + 1)),
            ],
            "tools[1].function.parameters",
            "deeper than 32",
        ),
    ]
    for raw, param, message in cases:
        with pytest.raises(InvalidRequest) as caught:
            parse(raw)
        assert caught.value.param == param
        assert message in caught.value.message
    with pytest.raises(InvalidRequest) as caught:
        parse([fn(name="a", parameters=_unsound({}))])
    assert "is not a valid JSON schema" in caught.value.message  # what a check would have said
    [tool] = parse([fn(name="a", parameters=_nested(MAX_SCHEMA_DEPTH // 2))])
    assert tool.name == "a"


def test_measure_counts_values_without_recursion() -> None:
    """``measure`` counts every JSON value and the depth, even far past Python's stack."""
    assert measure({"a": [1, 2, {"b": None}]}) == (6, 4)
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    _count, depth = measure(deep)
    assert depth > MAX_SCHEMA_DEPTH


def test_schema_check_keeps_the_event_loop_free() -> None:
    """A large schema's meta-schema check runs in a thread: the loop keeps ticking meanwhile."""
    big = {"type": "object", "properties": {f"q{i}": {"type": "string"} for i in range(1500)}}

    async def run() -> tuple[int, float]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        started = time.perf_counter()
        await parse_tools([fn(name="big", parameters=big)])
        took = time.perf_counter() - started
        stop.set()
        await task
        return ticks, took

    ticks, took = asyncio.run(run())
    # On the loop the check would allow no tick at all while it ran; in a thread the
    # ticker keeps going (how often depends on the GIL and the machine's load).
    assert took > 0.05 and ticks >= 3, (ticks, took)
