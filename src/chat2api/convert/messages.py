"""OpenAI chat messages → the ChatGPT conversation request body (pure).

The whole OpenAI history is sent as the ``messages`` of a new upstream
conversation (the E2 body of the spec, section 4.1): system and developer
turns become ``system`` messages, user and assistant turns keep their role,
tool calls and results are rendered as text (``convert.tools``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from chat2api.convert.models import ModelRoute
from chat2api.convert.schemas import ChatMessage, OtherPart
from chat2api.convert.tools import (
    FunctionTool,
    render_assistant_tool_calls,
    render_tool_result,
    resolve_tool_choice,
    tool_instructions,
)
from chat2api.errors import InvalidRequest
from chat2api.values import PromptTurn

if TYPE_CHECKING:
    from chat2api.upstream.files import UploadedFile

ATTACHMENT_PARTS = frozenset({"image_url", "input_image", "file", "input_file"})
# OpenAI reasoning_effort → the web app's thinking_effort (standard/extended/max).
_THINKING_EFFORT = {
    "none": "standard",
    "minimal": "standard",
    "low": "standard",
    "medium": "extended",
    "high": "max",
    "xhigh": "max",
}
_ROLE_MAP = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}

_DRAW = 4096  # bytes of randomness drawn at a time: 256 ids
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
_draws: list[bytes] = []


def _forget_draws() -> None:
    _draws.clear()  # a forked child draws its own: ids never repeat across processes


os.register_at_fork(after_in_child=_forget_draws)


def random_block() -> bytes:
    """16 bytes from the OS RNG, drawn by one ``os.urandom`` call per 256 blocks."""
    try:
        return _draws.pop()  # atomic: two threads never get the same bytes
    except IndexError:
        data = os.urandom(_DRAW)
        _draws[:] = [data[i : i + 16] for i in range(16, _DRAW, 16)]
        return data[:16]


def random_uuid_hex() -> str:
    """``uuid.uuid4().hex``, as uniform, from one ``os.urandom`` call per 256 ids.

    An answer takes several ids (request id, message ids, device): a system
    call and a ``UUID`` object each is more than the ids themselves cost.
    """
    h = random_block().hex()
    # Version 4 in the 13th digit, the RFC 4122 variant in the 17th, as uuid4() sets them.
    return f"{h[:12]}4{h[13:16]}{_VARIANT[h[16]]}{h[17:]}"


def random_uuid() -> str:
    """``str(uuid.uuid4())`` (see :func:`random_uuid_hex`)."""
    h = random_uuid_hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def message_text(message: ChatMessage, index: int) -> str:
    """The text of one OpenAI message; non-text parts are refused by name."""
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for j, part in enumerate(content):
        if isinstance(part, OtherPart):
            param = f"messages[{index}].content[{j}]"
            if part.type in ATTACHMENT_PARTS:
                continue  # carried as an attachment (see ``attachment_parts``)
            if part.type == "text":
                raise InvalidRequest("A text content part needs a 'text' string.", param=param)
            raise InvalidRequest(
                f"Content parts of type {part.type!r} are not supported; send text, "
                "image_url or file parts.",
                param=param,
                code="unsupported_content_part",
            )
        texts.append(part.text)
    return "\n".join(texts)


def attachment_parts(messages: Sequence[ChatMessage]) -> list[tuple[int, str, dict[str, Any]]]:
    """``(message index, param, part)`` of every image or file part."""
    out: list[tuple[int, str, dict[str, Any]]] = []
    for i, message in enumerate(messages):
        if isinstance(message.content, list):
            for j, part in enumerate(message.content):
                if isinstance(part, OtherPart) and part.type in ATTACHMENT_PARTS:
                    out.append((i, f"messages[{i}].content[{j}]", part.model_dump()))
    return out


def prompt_turns(
    messages: Sequence[ChatMessage],
    tools: Sequence[FunctionTool] = (),
    tool_choice: object = None,
    parallel_tool_calls: bool = True,
) -> list[PromptTurn]:
    """The conversation as the model will read it, one turn per message.

    With ``tools``, their instruction comes first (unless ``tool_choice`` is
    ``"none"``); an assistant message that made calls is rendered in the
    call syntax and each ``tool`` result as a user turn naming its call
    (see ``convert.tools``), so multi-step tool use reads naturally.
    """
    turns: list[PromptTurn] = []
    if tools and resolve_tool_choice(tool_choice, tools) != "none":
        turns.append(
            PromptTurn("system", tool_instructions(tools, tool_choice, parallel_tool_calls))
        )
    call_names: dict[str, str] = {}
    for i, message in enumerate(messages):
        text = message_text(message, i)
        if message.role in ("tool", "function"):
            call_id = message.tool_call_id or ""
            name = call_names.get(call_id) or message.name or ""
            turns.append(PromptTurn("user", render_tool_result(call_id, name, text)))
        elif message.role == "assistant" and message.tool_calls:
            calls = [call.model_dump() for call in message.tool_calls]
            call_names.update((call.id, call.function.name) for call in message.tool_calls)
            turns.append(PromptTurn("assistant", render_assistant_tool_calls(text, calls)))
        else:
            turns.append(PromptTurn(_ROLE_MAP[message.role], text, message.name))
    return turns


def to_chatgpt_messages(
    turns: Sequence[PromptTurn], files: Mapping[int, Sequence[UploadedFile]] | None = None
) -> list[dict[str, Any]]:
    """ChatGPT message objects for prompt turns; ``files`` by turn index (§4.4)."""
    out = []
    for index, (role, text, _) in enumerate(turns):
        message: dict[str, Any] = {
            "id": random_uuid(),
            "author": {"role": role},
            "content": {"content_type": "text", "parts": [text]},
            "metadata": {},
        }
        attached = (files or {}).get(index)
        if attached:
            pointers = [f.pointer() for f in attached if f.attachment.is_image]
            if pointers:
                message["content"] = {
                    "content_type": "multimodal_text",
                    "parts": [*pointers, text],
                }
            message["metadata"] = {"attachments": [f.metadata() for f in attached]}
        out.append(message)
    return out


def conversation_body(
    turns: Sequence[PromptTurn],
    route: ModelRoute,
    *,
    history_disabled: bool,
    encoding: Literal["v1", "legacy"],
    continues: tuple[str, str] | None = None,
    reasoning_effort: str | None = None,
    files: Mapping[int, Sequence[UploadedFile]] | None = None,
    system_hints: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``POST /backend-api/conversation`` body (spec 4.1) for one request.

    ``continues`` is ``(conversation_id, parent message id)`` of an upstream
    conversation to continue: ``turns`` are then only the new messages.
    ``reasoning_effort`` (OpenAI's scale) becomes ``thinking_effort``.
    """
    mode: dict[str, Any] = {"kind": "primary_assistant"}
    if route.gizmo_id:
        mode = {"kind": "gizmo_interaction", "gizmo_id": route.gizmo_id}
    body: dict[str, Any] = {
        "action": "next",
        "messages": to_chatgpt_messages(turns, files),
        "conversation_mode": mode,
        "model": route.slug,
        "parent_message_id": random_uuid(),
        "timezone_offset_min": -480,
        "history_and_training_disabled": history_disabled,
        "force_nulligen": False,
        "force_paragen": False,
        "force_paragen_model_slug": "",
        "force_rate_limit": False,
        "force_use_sse": True,
        "reset_rate_limits": False,
        "suggestions": [],
        "system_hints": list(system_hints),
        "supported_encodings": ["v1"] if encoding == "v1" else [],
        "paragen_cot_summary_display_override": "allow",
        "variant_purpose": "comparison_implicit",
        "websocket_request_id": random_uuid(),
    }
    if continues is not None:
        body["conversation_id"], body["parent_message_id"] = continues
    if reasoning_effort in _THINKING_EFFORT:
        body["thinking_effort"] = _THINKING_EFFORT[reasoning_effort]
    return body
