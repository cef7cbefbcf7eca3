"""The client's function tools: the ``tools`` request field, and argument checks.

``jsonschema`` is imported on the first request with tools: a deployment
that never sees one does not carry it (a few MB per process).

A schema is measured before it is looked at: at most ``MAX_TOOLS`` tools,
``MAX_SCHEMA_NODES`` JSON values in all their schemas together, nested at
most ``MAX_SCHEMA_DEPTH`` deep. Checking a schema against its meta-schema is
slow (about 0.3 s for 1,000 properties with draft 2020-12, and a
``RecursionError`` past ~90 levels), so it runs in a thread, and its verdict
is remembered per schema: agents send the same tools with every request.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import orjson

from chat2api.errors import InvalidRequest

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

__all__ = [
    "FunctionTool",
    "check_tools",
    "parse_tools",
    "require_schema",
    "require_valid_tools",
    "validate_arguments",
]

_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
_MAX_MESSAGE = 300
MAX_TOOLS = 128
MAX_SCHEMA_NODES = 5000
MAX_SCHEMA_DEPTH = 32


def measure(value: object) -> tuple[int, int]:
    """``(values, depth)`` of a JSON value, counted without recursion."""
    count, deepest = 0, 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        count += 1
        deepest = max(deepest, depth)
        if depth > MAX_SCHEMA_DEPTH or count > MAX_SCHEMA_NODES:
            break  # already too big: the caller refuses it
        if isinstance(item, Mapping):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return count, deepest


def _schema_error(schema_json: bytes) -> str | None:
    """Why the schema (canonical JSON) is not a valid JSON schema, or None."""
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import SchemaError

    schema = orjson.loads(schema_json)
    cls = validators.validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        return exc.message
    return None


class SchemaVerdicts:
    """The meta-schema check's verdict per schema, the last ``size`` remembered."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._verdicts: OrderedDict[bytes, str | None] = OrderedDict()

    async def error(self, schema: Mapping[str, Any]) -> str | None:
        """Why ``schema`` is not a valid JSON schema, or None (checked in a thread)."""
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        if key in self._verdicts:
            self._verdicts.move_to_end(key)
            return self._verdicts[key]
        verdict = await asyncio.to_thread(_schema_error, key)
        self._verdicts[key] = verdict
        if len(self._verdicts) > self._size:
            self._verdicts.popitem(last=False)
        return verdict


VERDICTS = SchemaVerdicts()


@dataclass(frozen=True, eq=False)
class FunctionTool:
    """One function the model may call, as the client declared it."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: dict(_EMPTY_PARAMETERS))
    strict: bool = False

    @cached_property
    def validator(self) -> Validator:
        """A validator for ``parameters`` (the dialect its ``$schema`` names, else 2020-12)."""
        from jsonschema import Draft202012Validator, validators

        cls = validators.validator_for(self.parameters, default=Draft202012Validator)
        validator: Validator = cls(self.parameters)
        return validator


def _bad(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _parse_one(entry: object, i: int) -> FunctionTool:
    where = f"tools[{i}]"
    if not isinstance(entry, Mapping):
        raise _bad(f"{where} must be an object.", where)
    kind = entry.get("type")
    if kind != "function":
        if not isinstance(kind, str):
            raise _bad(f"{where}.type is missing; only 'function' tools.", f"{where}.type")
        raise _bad(
            f"{where}.type {kind!r} is not supported; only 'function' tools.", f"{where}.type"
        )
    function = entry.get("function")
    if not isinstance(function, Mapping):
        raise _bad(f"{where}.function must be an object.", f"{where}.function")
    name = function.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _bad(
            f"{where}.function.name must be 1 to 64 letters, digits, '_' or '-'.",
            f"{where}.function.name",
        )
    description = function.get("description")
    if description is None:
        description = ""
    elif not isinstance(description, str):
        raise _bad(
            f"{where}.function.description must be a string.", f"{where}.function.description"
        )
    parameters = function.get("parameters")
    if parameters is None:
        parameters = dict(_EMPTY_PARAMETERS)
    elif not isinstance(parameters, Mapping):
        raise _bad(
            f"{where}.function.parameters must be a JSON schema object.",
            f"{where}.function.parameters",
        )
    strict = function.get("strict")
    if strict is None:
        strict = False
    elif not isinstance(strict, bool):
        raise _bad(f"{where}.function.strict must be a boolean.", f"{where}.function.strict")
    return FunctionTool(name, description, dict(parameters), strict)


async def parse_tools(raw: object) -> list[FunctionTool]:
    """The function tools of a request's ``tools`` field; ``InvalidRequest`` names the bad entry.

    An empty list is accepted and means no tools. Sizes are checked first
    (module docstring), each schema against its meta-schema last.
    """
    if not isinstance(raw, list):
        raise _bad("tools must be an array of tool objects.", "tools")
    if len(raw) > MAX_TOOLS:
        raise _bad(f"tools may list at most {MAX_TOOLS} tools, not {len(raw)}.", "tools")
    tools: list[FunctionTool] = []
    seen: set[str] = set()
    nodes = 0
    for i, entry in enumerate(raw):
        tool = _parse_one(entry, i)
        nodes = _check_one(tool, f"tools[{i}].function", seen, nodes)
        tools.append(tool)
    await require_valid_tools(tools, [f"tools[{i}].function" for i in range(len(tools))])
    return tools


def check_tools(tools: Sequence[FunctionTool], places: Sequence[str]) -> None:
    """Refuse too many tools, a bad or repeated name, parameter schemas too big or too deep.

    ``places[i]`` is where tool ``i`` was declared (``tools[1]``,
    ``input[0].tools[2].tools[0]``): the error names its field there.
    """
    if len(tools) > MAX_TOOLS:
        raise _bad(f"tools may list at most {MAX_TOOLS} tools, not {len(tools)}.", "tools")
    seen: set[str] = set()
    nodes = 0
    for tool, place in zip(tools, places, strict=True):
        nodes = _check_one(tool, place, seen, nodes)


def _check_one(tool: FunctionTool, place: str, seen: set[str], nodes: int) -> int:
    """Check one more tool (its name, its schema's size); the schema values counted so far."""
    if not _NAME_RE.match(tool.name):
        raise _bad(f"{place}.name must be 1 to 64 letters, digits, '_' or '-'.", f"{place}.name")
    if tool.name in seen:
        raise _bad(f"{place}.name {tool.name!r} is declared twice.", f"{place}.name")
    count, depth = measure(tool.parameters)
    nodes += count
    _check_size(nodes, depth, f"{place}.parameters", together=True)
    seen.add(tool.name)
    return nodes


async def require_valid_tools(tools: Sequence[FunctionTool], places: Sequence[str]) -> None:
    """Refuse a parameter schema that is not a valid JSON schema (after ``check_tools``)."""
    for tool, place in zip(tools, places, strict=True):
        await _require_valid(tool.parameters, f"{place}.parameters")


def _check_size(nodes: int, depth: int, param: str, *, together: bool = False) -> None:
    if depth > MAX_SCHEMA_DEPTH:
        raise _bad(f"{param} is nested deeper than {MAX_SCHEMA_DEPTH} levels.", param)
    if nodes > MAX_SCHEMA_NODES:
        whose = "The tools' parameter schemas hold" if together else "The schema holds"
        raise _bad(f"{whose} more than {MAX_SCHEMA_NODES} values (at {param}).", param)


async def _require_valid(schema: Mapping[str, Any], param: str) -> None:
    error = await VERDICTS.error(schema)
    if error is not None:
        raise _bad(f"{param} is not a valid JSON schema: {error}"[:_MAX_MESSAGE], param)


async def require_schema(schema: Mapping[str, Any], param: str) -> None:
    """Refuse a client's JSON schema that is too big, too deep or invalid (400 naming ``param``)."""
    count, depth = measure(schema)
    _check_size(count, depth, param)
    await _require_valid(schema, param)


def validate_arguments(tool: FunctionTool, arguments_obj: Any) -> str | None:
    """Why ``arguments_obj`` does not fit ``tool.parameters``, or None when it does."""
    from jsonschema.exceptions import best_match

    error = best_match(tool.validator.iter_errors(arguments_obj))
    if error is None:
        return None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"arguments{where}: {error.message}"[:_MAX_MESSAGE]
