"""The client's function tools: the ``tools`` request field, and argument checks (pure).

``jsonschema`` is imported on the first request with tools: a deployment
that never sees one does not carry it (a few MB per process).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from chat2api.errors import InvalidRequest

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

__all__ = ["FunctionTool", "parse_tools", "validate_arguments"]

_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
_MAX_MESSAGE = 300


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
    tool = FunctionTool(name, description, dict(parameters), strict)
    from jsonschema.exceptions import SchemaError

    try:
        type(tool.validator).check_schema(tool.parameters)
    except SchemaError as exc:
        raise _bad(
            f"{where}.function.parameters is not a valid JSON schema: {exc.message}"[:_MAX_MESSAGE],
            f"{where}.function.parameters",
        ) from exc
    return tool


def parse_tools(raw: object) -> list[FunctionTool]:
    """The function tools of a request's ``tools`` field; ``InvalidRequest`` names the bad entry.

    An empty list is accepted and means no tools.
    """
    if not isinstance(raw, list):
        raise _bad("tools must be an array of tool objects.", "tools")
    tools: list[FunctionTool] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw):
        tool = _parse_one(entry, i)
        if tool.name in seen:
            raise _bad(
                f"tools[{i}].function.name {tool.name!r} is declared twice.",
                f"tools[{i}].function.name",
            )
        seen.add(tool.name)
        tools.append(tool)
    return tools


def validate_arguments(tool: FunctionTool, arguments_obj: Any) -> str | None:
    """Why ``arguments_obj`` does not fit ``tool.parameters``, or None when it does."""
    from jsonschema.exceptions import best_match

    error = best_match(tool.validator.iter_errors(arguments_obj))
    if error is None:
        return None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"arguments{where}: {error.message}"[:_MAX_MESSAGE]
