"""OpenAI function calling over an upstream that has none (pure).

The ChatGPT web backend only answers text, so chat2api describes the client's
tools in a short instruction prepended to the conversation
(``tool_instructions``), recognises the model's calls in the streamed answer
(``ToolCallParser``), and renders earlier calls and their results back into
the text history (``render_assistant_tool_calls``, ``render_tool_result``).
The protocol and its rules are in docs/tools.md.

This package's ``__init__`` is the public face; the parts live in
``schema`` (the ``tools`` field and argument checks), ``repair`` (tolerant
JSON), ``parser`` (the streaming recogniser), ``prompt`` (the instruction and
the text history), ``calls`` (``ToolCalls``: the parser applied to one
answer) and ``responses`` (``ToolTable``: the Responses API's tool kinds).
"""

from __future__ import annotations

from chat2api.convert.tools.calls import ToolCalls
from chat2api.convert.tools.parser import (
    CALL_END,
    CALL_START,
    CallArgumentsDelta,
    CallDone,
    CallInvalid,
    CallStarted,
    TextOut,
    ToolCallParser,
    ToolEvent,
    new_call_id,
)
from chat2api.convert.tools.prompt import (
    RESULT_END,
    RESULT_START,
    call_syntax,
    correction_message,
    instructions_for,
    render_assistant_tool_calls,
    render_calls,
    render_tool_result,
    resolve_tool_choice,
    tool_instructions,
)
from chat2api.convert.tools.repair import repair_arguments
from chat2api.convert.tools.responses import ToolTable, with_image_size
from chat2api.convert.tools.schema import (
    FunctionTool,
    check_tools,
    parse_tools,
    require_schema,
    require_valid_tools,
    validate_arguments,
)

__all__ = [
    "CALL_END",
    "CALL_START",
    "RESULT_END",
    "RESULT_START",
    "CallArgumentsDelta",
    "CallDone",
    "CallInvalid",
    "CallStarted",
    "FunctionTool",
    "TextOut",
    "ToolCallParser",
    "ToolCalls",
    "ToolEvent",
    "ToolTable",
    "call_syntax",
    "check_tools",
    "correction_message",
    "instructions_for",
    "new_call_id",
    "parse_tools",
    "render_assistant_tool_calls",
    "render_calls",
    "render_tool_result",
    "repair_arguments",
    "require_schema",
    "require_valid_tools",
    "resolve_tool_choice",
    "tool_instructions",
    "validate_arguments",
    "with_image_size",
]
