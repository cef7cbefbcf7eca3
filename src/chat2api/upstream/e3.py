"""E3 request bodies (spec 4.2), made from the E2 body every caller builds.

The conversation body is built once, in E2's shape (``convert.messages``),
whatever era the base URL speaks: the era is chosen per attempt, after the
account is leased, so the upstream layer reshapes the body here. The
differences are the web app's 2026 fields: ``parent_message_id`` is the
literal ``client-created-root`` for a new conversation, messages carry a
``create_time`` and the composer's metadata, ``client_prepare_state`` says
the conduit prepare succeeded, and E2's websocket/paragen switches are gone.
The conduit prepare sends the same top-level fields without the messages.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["NEW_CONVERSATION_PARENT", "conversation_body", "prepare_body"]

NEW_CONVERSATION_PARENT = "client-created-root"

# E2-only switches (spec 4.1) that the 2026 web app no longer sends.
_E2_ONLY = frozenset(
    {
        "websocket_request_id",
        "force_use_sse",
        "force_nulligen",
        "force_paragen",
        "force_paragen_model_slug",
        "force_rate_limit",
        "reset_rate_limits",
        "suggestions",
        "variant_purpose",
    }
)
_MESSAGE_METADATA = {
    "developer_mode_connector_ids": [],
    "selected_sources": [],
    "selected_github_repos": [],
    "selected_all_github_repos": False,
    "serialization_metadata": {"custom_symbol_offsets": []},
}
# The page of a desktop browser (BrowserProfile's 2560x1440 screen, UTC-8).
_CONTEXT = {
    "is_dark_mode": False,
    "time_since_loaded": 120,
    "page_height": 900,
    "page_width": 1400,
    "pixel_ratio": 2,
    "screen_height": 1440,
    "screen_width": 2560,
    "app_name": "chatgpt.com",
}


_E3_FIELDS = {
    "timezone_offset_min": 480,  # Date.getTimezoneOffset() in UTC-8, as the profile's clock
    "timezone": "America/Los_Angeles",
    "enable_message_followups": True,
    "supports_buffering": True,
    "client_contextual_info": _CONTEXT,
    "force_parallel_switch": "auto",
}
_LEFT_OUT = _E2_ONLY | {"messages"}


def _top_level(body: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in body.items() if k not in _LEFT_OUT}
    if "conversation_id" not in out:
        out["parent_message_id"] = NEW_CONVERSATION_PARENT
    out.update(_E3_FIELDS)
    out.setdefault("system_hints", [])
    out.setdefault("paragen_cot_summary_display_override", "allow")
    return out


def conversation_body(body: dict[str, Any], *, now: float | None = None) -> dict[str, Any]:
    """The ``POST …/f/conversation`` body for the E2-shaped ``body``."""
    created = round(time.time() if now is None else now, 3)
    out = _top_level(body)
    out["messages"] = [
        {
            **message,
            "create_time": created,
            "metadata": _MESSAGE_METADATA | dict(message.get("metadata") or {}),
        }
        for message in body.get("messages", ())
    ]
    out["client_prepare_state"] = "success"
    return out


def prepare_body(body: dict[str, Any]) -> dict[str, Any]:
    """The ``POST …/f/conversation/prepare`` body: the same fields without messages."""
    out = _top_level(body)
    out["fork_from_shared_post"] = False
    out["client_prepare_state"] = "none"
    return out
