"""The tool protocol in the prompt: the instruction, earlier calls and results as text,
the correction asked for an unusable call (docs/tools.md)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from chat2api.convert.tools.parser import CALL_END, CALL_START, CallInvalid
from chat2api.convert.tools.repair import repair_arguments
from chat2api.convert.tools.schema import FunctionTool
from chat2api.errors import InvalidRequest

RESULT_START = "<tool_result"
RESULT_END = "</tool_result>"

_SYNTAX = f'{CALL_START}\n{{"name": "NAME", "arguments": {{...}}}}\n{CALL_END}'


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def resolve_tool_choice(tool_choice: object, tools: Sequence[FunctionTool]) -> str:
    """``"none"``, ``"auto"``, ``"required"`` or the name of the one function to call.

    ``tool_choice`` is the request field as sent (None means ``"auto"``); a
    shape OpenAI does not accept, or a function not in ``tools``, is an
    ``InvalidRequest`` on ``tool_choice``.
    """
    if tool_choice is None:
        return "auto"
    if isinstance(tool_choice, str):
        if tool_choice in ("none", "auto", "required"):
            return tool_choice
        raise InvalidRequest(
            f"tool_choice {tool_choice!r} is not one of 'none', 'auto', 'required'.",
            param="tool_choice",
        )
    if isinstance(tool_choice, Mapping) and tool_choice.get("type") == "function":
        function = tool_choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if isinstance(name, str):
            if any(tool.name == name for tool in tools):
                return name
            raise InvalidRequest(
                f"tool_choice names {name!r}, which is not in tools.",
                param="tool_choice.function.name",
            )
    raise InvalidRequest(
        "tool_choice must be 'none', 'auto', 'required' or "
        '{"type": "function", "function": {"name": ...}}.',
        param="tool_choice",
    )


def _choice_rule(choice: str) -> str:
    if choice == "none":
        return "Do not call any function now: answer in plain text."
    if choice == "auto":
        return "Call functions only when they help; otherwise answer directly."
    if choice == "required":
        return "You must call at least one function in this answer."
    return f"You must call the function {choice} in this answer."


def tool_instructions(
    tools: Sequence[FunctionTool], tool_choice: object, parallel_tool_calls: bool
) -> str:
    """The instruction prepended to a request that carries ``tools`` (``tool_choice`` as sent)."""
    return instructions_for(tools, resolve_tool_choice(tool_choice, tools), parallel_tool_calls)


def instructions_for(tools: Sequence[FunctionTool], choice: str, parallel_tool_calls: bool) -> str:
    """``tool_instructions`` for a resolved ``choice`` (as ``resolve_tool_choice`` gives it)."""
    lines = [
        "# Tools",
        "You can call the functions below. To call one, write this block, "
        "each marker on a line of its own, outside any code block:",
        _SYNTAX,
        "arguments is a JSON object matching the function's parameters schema.",
    ]
    if parallel_tool_calls:
        lines.append("To make several calls at once, write one block per call.")
    else:
        lines.append("Make at most one call per answer.")
    lines.append(
        "Text before a call is shown to the user; stop after your last call. "
        f"Results come back in a later message as {RESULT_START} blocks."
    )
    lines.append(_choice_rule(choice))
    lines.append("Functions:")
    for tool in tools:
        head = f"- {tool.name}: {tool.description}" if tool.description else f"- {tool.name}"
        lines.append(head.rstrip())
        lines.append(f"  parameters: {_compact(tool.parameters)}")
    return "\n".join(lines)


def _call_block(name: str, arguments: str) -> str:
    fixed = repair_arguments(arguments)
    # Arguments the client never could have received from us are kept as a string.
    args = fixed if fixed is not None else _compact(arguments)
    return f'{CALL_START}\n{{"name": {_compact(name)}, "arguments": {args}}}\n{CALL_END}'


def render_assistant_tool_calls(
    content: str | None, tool_calls: Sequence[Mapping[str, Any]]
) -> str:
    """An assistant message that made ``tool_calls`` (OpenAI shape), as the model wrote it."""
    calls: list[tuple[str, str]] = []
    for call in tool_calls:
        function = call.get("function")
        if not isinstance(function, Mapping):
            continue
        arguments = function.get("arguments")
        calls.append(
            (
                str(function.get("name", "")),
                arguments if isinstance(arguments, str) else _compact(arguments or {}),
            )
        )
    return render_calls(content, calls)


def render_calls(content: str | None, calls: Iterable[tuple[str, str]]) -> str:
    """Text, then ``(name, JSON arguments)`` calls, as the model wrote them."""
    parts = [content.rstrip()] if content and content.strip() else []
    parts.extend(_call_block(name, arguments) for name, arguments in calls)
    return "\n".join(parts)


def render_tool_result(tool_call_id: str, name: str, content: str) -> str:
    """A ``role: "tool"`` message: the result of call ``tool_call_id`` to ``name``."""
    head = f"{RESULT_START} name={_compact(name)} id={_compact(tool_call_id)}>"
    return f"{head}\n{content}\n{RESULT_END}"


def correction_message(invalid: CallInvalid, tool: FunctionTool | None) -> str:
    """The user turn asking the model to write an unusable call again, correctly."""
    return call_syntax(f"Your function call could not be used: {invalid.reason}", tool)


def call_syntax(reason: str, tool: FunctionTool | None) -> str:
    """The user turn asking for one call (to ``tool`` when given), after ``reason``."""
    lines = [
        f"{reason}.",
        "Write the call now, correctly, as exactly one block:",
        _SYNTAX,
    ]
    if tool is not None:
        lines.append(f"{tool.name} parameters: {_compact(tool.parameters)}")
    return "\n".join(lines)
