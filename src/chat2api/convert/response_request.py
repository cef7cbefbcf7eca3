"""A Responses request as the answer pipeline's inputs (pure).

``read_request`` takes a validated ``ResponseRequest`` (``convert.response_schemas``)
and gives what ``chat2api.answering`` is asked with: the prompt turns
(the structured-output and tool instructions, ``instructions``, then
``input``; a ``size=WxH`` the image_generation tool asks for goes after the
last user text), the image and file parts by turn, the client's tools
(``ToolTable``) and the resolved ``tool_choice``, the output format and the
system hints (``picture_v2`` when a picture is demanded, else ``search``).
Earlier calls and their outputs are written back in the text the model
writes and reads them in (``convert.tools``), under the names the model was
offered. As ``convert.messages`` does for the Chat API.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chat2api.convert.response_schemas import (
    AdditionalToolsItem,
    CallOutputItem,
    ConfigurationUpdateItem,
    CustomToolCallItem,
    FunctionCallItem,
    InputItem,
    MessageItem,
    ReasoningItem,
    ResponseRequest,
    TextConfig,
    TextFormatJsonObject,
    TextFormatJsonSchema,
    TextPart,
)
from chat2api.convert.structured import OutputFormat, format_instructions, json_schema_format
from chat2api.convert.tools import (
    instructions_for,
    render_calls,
    render_tool_result,
    with_image_size,
)
from chat2api.convert.tools.responses import ToolTable
from chat2api.errors import InvalidRequest
from chat2api.values import PromptTurn

__all__ = ["AttachmentPart", "ResponseInput", "input_turns", "read_request", "text_format"]

AttachmentPart = tuple[int, str, dict[str, Any]]  # (turn index, param, the part)
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


@dataclass(slots=True)
class ResponseInput:
    """What a Responses request asks, in the pipeline's terms."""

    turns: list[PromptTurn]
    parts: list[AttachmentPart]  # image and file parts, by index in ``turns``
    tools: ToolTable
    choice: str  # "none", "auto", "required" or the offered name to call
    format: OutputFormat | None
    system_hints: list[str] = field(default_factory=list)

    @property
    def calls_tools(self) -> bool:
        """Whether the answer may call tools (there are some, and ``choice`` allows it)."""
        return bool(self.tools.functions) and self.choice != "none"


def read_request(request: ResponseRequest) -> ResponseInput:
    """The pipeline's inputs for ``request``; a 400 names what cannot be sent.

    The tools' sizes and names are checked here; their schemas against the
    meta-schema by ``ToolTable.require_valid``, awaited before any fetch.
    """
    table = ToolTable()
    table.add_tools(request.tools, "tools")
    fmt = text_format(request.text)
    turns, parts = input_turns(request.input, request.instructions, table)
    table.check()
    choice = table.choice(request.tool_choice)
    head: list[PromptTurn] = []
    if fmt is not None:
        head.append(PromptTurn("system", format_instructions(fmt)))
    asked = ResponseInput(turns, parts, table, choice, fmt)
    if asked.calls_tools:
        head.append(
            PromptTurn("system", instructions_for(table.functions, choice, request.parallel))
        )
    if head:
        asked.turns = [*head, *turns]
        asked.parts = [(index + len(head), param, part) for index, param, part in parts]
    asked.turns = with_image_size(asked.turns, table.image_size)
    if table.image_forced(request.tool_choice):
        asked.system_hints = ["picture_v2"]  # a picture is demanded: the web app draws one
    elif table.search and choice != "none":
        asked.system_hints = ["search"]  # the web app's own search, when it sees fit
    return asked


def text_format(text: TextConfig | None) -> OutputFormat | None:
    """The ``text.format`` asked for; None for plain text."""
    fmt = text.format if text is not None else None
    if isinstance(fmt, TextFormatJsonObject):
        return OutputFormat("json_object")
    if isinstance(fmt, TextFormatJsonSchema):
        return json_schema_format(fmt.name, fmt.schema_, fmt.description, fmt.strict, "text.format")
    return None


def _text(message: MessageItem, param: str, parts: list[tuple[str, dict[str, Any]]]) -> str:
    """The text of a message; its image and file parts go to ``parts``."""
    if isinstance(message.content, str):
        return message.content
    texts: list[str] = []
    for j, part in enumerate(message.content):
        where = f"{param}.content[{j}]"
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif part.type in ("input_image", "input_file"):
            parts.append((where, part.model_dump(exclude_none=True)))
        else:
            raise InvalidRequest(
                f"Content parts of type {part.type!r} are not supported here.",
                param=where,
                code="unsupported_content_part",
            )
    return "\n".join(texts)


def _output_text(item: CallOutputItem) -> str:
    """A tool output's text: a string, or the text of its parts (``input_text`` …)."""
    if isinstance(item.output, str):
        return item.output
    return "\n".join(part.text for part in item.output if part.text is not None)


def input_turns(
    input_: str | Sequence[InputItem], instructions: str | None, tools: ToolTable
) -> tuple[list[PromptTurn], list[AttachmentPart]]:
    """Prompt turns for ``input`` (``instructions`` first), and the image and file parts
    of its messages by turn index.

    Tools sent in an ``additional_tools`` item go to ``tools``; consecutive
    calls are one assistant turn, written under the names the model was offered.
    """
    turns: list[PromptTurn] = []
    parts: list[AttachmentPart] = []
    if instructions:
        turns.append(PromptTurn("system", instructions))
    if isinstance(input_, str):
        turns.append(PromptTurn("user", input_))
        return turns, parts
    names: dict[str, str] = {}  # call id → the offered name called
    calls: list[tuple[str, str]] = []  # (offered name, JSON arguments) not yet written

    def flush_calls() -> None:
        if calls:
            turns.append(PromptTurn("assistant", render_calls(None, calls)))
            calls.clear()

    for i, item in enumerate(input_):
        param = f"input[{i}]"
        if isinstance(item, FunctionCallItem | CustomToolCallItem):
            name = tools.offered_name(item.name, item.namespace)
            if isinstance(item, CustomToolCallItem):
                arguments = json.dumps({"input": item.input}, ensure_ascii=False)
            else:
                arguments = item.arguments
            names[item.call_id] = name
            calls.append((name, arguments))
            continue
        if isinstance(item, AdditionalToolsItem):
            tools.add_tools(item.tools, f"{param}.tools")
            continue
        flush_calls()
        if isinstance(item, MessageItem):
            found: list[tuple[str, dict[str, Any]]] = []
            text = _text(item, param, found)
            parts.extend((len(turns), where, part) for where, part in found)
            turns.append(PromptTurn(_ROLES[item.role], text))
        elif isinstance(item, CallOutputItem):
            result = render_tool_result(
                item.call_id, names.get(item.call_id, ""), _output_text(item)
            )
            turns.append(PromptTurn("user", result))
        elif isinstance(item, ReasoningItem | ConfigurationUpdateItem):
            continue  # earlier reasoning, per-turn settings: nothing the model reads
        else:
            raise InvalidRequest(
                f"Input items of type {item.type!r} are not supported.", param=param
            )
    flush_calls()
    return turns, parts
