"""Server-sent events framing of the two streaming endpoints."""

from __future__ import annotations

from typing import Any

import orjson

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_data(payload: dict[str, Any]) -> bytes:
    """One ``data:`` event (Chat Completions chunks)."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def sse_event(event: dict[str, Any]) -> bytes:
    """One event named by its ``type`` (Responses events)."""
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\n" + sse_data(event)
