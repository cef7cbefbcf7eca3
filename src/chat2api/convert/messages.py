"""OpenAI chat messages → the ChatGPT conversation request body (pure).

The whole OpenAI history is sent as the ``messages`` of a new upstream
conversation (the E2 body of the spec, section 4.1): system and developer
turns become ``system`` messages, user and assistant turns keep their role.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

from chat2api.api.schemas import ChatMessage, OtherPart
from chat2api.convert.models import ModelRoute
from chat2api.errors import InvalidRequest

_ROLE_MAP = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


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
            if part.type == "text":
                raise InvalidRequest("A text content part needs a 'text' string.", param=param)
            raise InvalidRequest(
                f"Content parts of type {part.type!r} are not supported; send 'text' parts.",
                param=param,
                code="unsupported_content_part",
            )
        texts.append(part.text)
    return "\n".join(texts)


def to_chatgpt_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """ChatGPT message objects for an OpenAI history."""
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = _ROLE_MAP.get(message.role)
        if role is None:
            raise InvalidRequest(
                f"Messages with role {message.role!r} are not supported yet.",
                param=f"messages[{i}].role",
            )
        out.append(
            {
                "id": str(uuid.uuid4()),
                "author": {"role": role},
                "content": {"content_type": "text", "parts": [message_text(message, i)]},
                "metadata": {},
            }
        )
    return out


def conversation_body(
    messages: Sequence[ChatMessage],
    route: ModelRoute,
    *,
    history_disabled: bool,
    encoding: Literal["v1", "legacy"],
) -> dict[str, Any]:
    """The ``POST /backend-api/conversation`` body (spec 4.1) for one request."""
    mode: dict[str, Any] = {"kind": "primary_assistant"}
    if route.gizmo_id:
        mode = {"kind": "gizmo_interaction", "gizmo_id": route.gizmo_id}
    return {
        "action": "next",
        "messages": to_chatgpt_messages(messages),
        "conversation_mode": mode,
        "model": route.slug,
        "parent_message_id": str(uuid.uuid4()),
        "timezone_offset_min": -480,
        "history_and_training_disabled": history_disabled,
        "force_nulligen": False,
        "force_paragen": False,
        "force_paragen_model_slug": "",
        "force_rate_limit": False,
        "force_use_sse": True,
        "reset_rate_limits": False,
        "suggestions": [],
        "system_hints": [],
        "supported_encodings": ["v1"] if encoding == "v1" else [],
        "paragen_cot_summary_display_override": "allow",
        "variant_purpose": "comparison_implicit",
        "websocket_request_id": str(uuid.uuid4()),
    }
