"""The Responses API's answer: output items and events (pure).

The same chunk deltas the chat completions endpoint streams (content,
reasoning, tool calls; generated images with their bytes) are folded by
``ResponseBuilder`` into Responses output items, and, when streaming, into
the Responses event sequence with sequence numbers. The request side is
``convert.response_request``.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

from chat2api.convert.completion import CITATION_KEY, IMAGE_BYTES_KEY, IMAGE_KEY
from chat2api.convert.sniff import image_dimensions, sniff_mime
from chat2api.convert.tools.responses import ToolTable, call_item_fields
from chat2api.protocol.events import ImageGenerated


def new_id(prefix: str) -> str:
    """OpenAI-style object ids: ``resp_…``, ``msg_…``, ``rs_…``, ``fc_…``."""
    return f"{prefix}_{secrets.token_hex(24)}"


# image_generation_call.output_format by the sniffed type of the bytes
_IMAGE_FORMATS = {
    "image/png": "png",
    "image/webp": "webp",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
}


class ResponseBuilder:
    """Folds answer deltas into Responses output items and events.

    ``feed(delta)`` returns the stream events the delta causes (already
    numbered); ``finish(status, usage)`` closes open items and returns the
    final events; ``response`` is the response object at any time.
    """

    def __init__(
        self,
        request: Mapping[str, Any],
        *,
        response_id: str | None = None,
        text_format: dict[str, Any] | None = None,
        tools: ToolTable | None = None,
    ) -> None:
        self._tools = tools if tools is not None else ToolTable()
        self.id = response_id or new_id("resp")
        self._text_format = text_format or {"type": "text"}  # echoed as asked
        self.created_at = int(time.time())
        self._request = request
        self.output: list[dict[str, Any]] = []
        self.status = "in_progress"
        self.error: dict[str, Any] | None = None
        self.incomplete_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self._seq = 0
        self._open: dict[str, Any] | None = None  # the item being streamed
        self._calls: dict[int, dict[str, Any]] = {}  # tool call index → call item
        self._offered: dict[int, str] = {}  # tool call index → the name the model called
        self._custom_args: dict[int, str] = {}  # custom calls: their JSON arguments so far
        self._image: dict[str, Any] | None = None  # the image_generation_call awaiting its bytes

    # ------------------------------------------------------------- objects

    @property
    def response(self) -> dict[str, Any]:
        """The ``response`` object (as returned, stored, and carried by events)."""
        req = self._request
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": self.status,
            "background": False,
            "error": self.error,
            "incomplete_details": (
                {"reason": self.incomplete_reason} if self.incomplete_reason else None
            ),
            "instructions": req.get("instructions"),
            "max_output_tokens": req.get("max_output_tokens"),
            "model": req.get("model"),
            "output": [dict(item) for item in self.output],
            "parallel_tool_calls": req.get("parallel_tool_calls", True),
            "previous_response_id": req.get("previous_response_id"),
            "reasoning": req.get("reasoning") or {"effort": None, "summary": None},
            "store": req.get("store", True),
            "temperature": req.get("temperature"),
            "text": self._text(),
            "tool_choice": req.get("tool_choice", "auto"),
            "tools": req.get("tools") or [],
            "top_p": req.get("top_p"),
            "truncation": "disabled",
            "usage": self.usage,
            "user": req.get("user"),
            "metadata": req.get("metadata") or {},
        }

    def _text(self) -> dict[str, Any]:
        asked = self._request.get("text")
        out = dict(asked) if isinstance(asked, Mapping) else {}
        out["format"] = self._text_format
        return out

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return event

    def start(self) -> list[dict[str, Any]]:
        """``response.created`` and ``response.in_progress``."""
        return [
            self._event("response.created", response=self.response),
            self._event("response.in_progress", response=self.response),
        ]

    # -------------------------------------------------------------- deltas

    def feed(self, delta: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The events one chat-completion delta causes."""
        events: list[dict[str, Any]] = []
        if reasoning := delta.get("reasoning_content"):
            events += self._text_into("reasoning", reasoning)
        if content := delta.get("content"):
            events += self._text_into("message", content)
            if cited := delta.get(CITATION_KEY):
                events += self._annotate(content, cited)
        for call in delta.get("tool_calls") or []:
            events += self._call(call)
        if (image := delta.get(IMAGE_KEY)) is not None:
            data = delta.get(IMAGE_BYTES_KEY)
            events += self._image_started() if data is None else self._image_done(image, data)
        return events

    def output_text(self, text: str) -> tuple[int, str, int] | None:
        """``feed({"content": text})`` while a message item is open (``text`` not empty).

        Folds the text as ``feed`` does and returns what its one
        ``response.output_text.delta`` event carries besides the text and the
        constant fields: ``(sequence_number, item_id, output_index)``, for an
        encoder that serialises the rest once. ``None``, and nothing done,
        when no message item is open (``feed`` would open one).
        """
        item = self._open
        if item is None or item["type"] != "message":
            return None
        item["content"][0]["text"] += text
        seq = self._seq
        self._seq = seq + 1
        return seq, item["id"], self.output.index(item)

    def _image_started(self) -> list[dict[str, Any]]:
        """An ``image_generation_call`` item, generating until its bytes come."""
        events = self._close_open()
        item: dict[str, Any] = {
            "id": new_id("ig"),
            "type": "image_generation_call",
            "status": "in_progress",
            "result": None,
        }
        self.output.append(item)
        self._image = item
        index = len(self.output) - 1
        added = self._event("response.output_item.added", output_index=index, item=dict(item))
        events.append(added)
        for status in ("in_progress", "generating"):
            item["status"] = status
            events.append(
                self._event(
                    f"response.image_generation_call.{status}",
                    item_id=item["id"],
                    output_index=index,
                )
            )
        return events

    def _image_done(self, image: ImageGenerated, data: bytes) -> list[dict[str, Any]]:
        """The image's bytes came: the item is completed with them (base64)."""
        item, self._image = self._image, None
        assert item is not None
        item["status"] = "completed"
        item["result"] = base64.b64encode(data).decode()
        fmt = _IMAGE_FORMATS.get(sniff_mime(data) or "")
        if fmt is not None:
            item["output_format"] = fmt
        size = image_dimensions(data)
        if size is None and image.width and image.height:
            size = (image.width, image.height)
        if size is not None:
            item["size"] = f"{size[0]}x{size[1]}"
        if image.prompt:
            item["revised_prompt"] = image.prompt
        index = self.output.index(item)
        done = "response.image_generation_call.completed"
        return [
            self._event(done, item_id=item["id"], output_index=index),
            self._event("response.output_item.done", output_index=index, item=dict(item)),
        ]

    def _text_into(self, kind: str, text: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if self._open is None or self._open["type"] != kind:
            events += self._close_open()
            events += self._open_item(kind)
        item = self._open
        assert item is not None
        index = self.output.index(item)
        if kind == "reasoning":
            item["summary"][0]["text"] += text
            events.append(
                self._event(
                    "response.reasoning_summary_text.delta",
                    item_id=item["id"],
                    output_index=index,
                    summary_index=0,
                    delta=text,
                )
            )
        else:
            item["content"][0]["text"] += text
            events.append(
                self._event(
                    "response.output_text.delta",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    delta=text,
                    logprobs=[],
                )
            )
        return events

    def _annotate(self, link: str, cited: Mapping[str, str]) -> list[dict[str, Any]]:
        """A ``url_citation`` over the link just added (`` [title](url)``) to the open text."""
        item = self._open
        assert item is not None
        part = item["content"][0]
        end = len(part["text"])
        annotation = {
            "type": "url_citation",
            "start_index": end - len(link.lstrip()),
            "end_index": end,
            "url": cited["url"],
            "title": cited["title"],
        }
        part["annotations"].append(annotation)
        return [
            self._event(
                "response.output_text.annotation.added",
                item_id=item["id"],
                output_index=self.output.index(item),
                content_index=0,
                annotation_index=len(part["annotations"]) - 1,
                annotation=annotation,
            )
        ]

    def _open_item(self, kind: str) -> list[dict[str, Any]]:
        if kind == "reasoning":
            item: dict[str, Any] = {
                "id": new_id("rs"),
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": ""}],
            }
            self.output.append(item)
            self._open = item
            index = len(self.output) - 1
            added = dict(item, summary=[])
            return [
                self._event("response.output_item.added", output_index=index, item=added),
                self._event(
                    "response.reasoning_summary_part.added",
                    item_id=item["id"],
                    output_index=index,
                    summary_index=0,
                    part={"type": "summary_text", "text": ""},
                ),
            ]
        item = {
            "id": new_id("msg"),
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [{"type": "output_text", "text": "", "annotations": []}],
        }
        self.output.append(item)
        self._open = item
        index = len(self.output) - 1
        return [
            self._event(
                "response.output_item.added", output_index=index, item=dict(item, content=[])
            ),
            self._event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": []},
            ),
        ]

    def _close_open(self) -> list[dict[str, Any]]:
        item, self._open = self._open, None
        if item is None:
            return []
        index = self.output.index(item)
        if item["type"] == "reasoning":
            text = item["summary"][0]["text"]
            return [
                self._event(
                    "response.reasoning_summary_text.done",
                    item_id=item["id"],
                    output_index=index,
                    summary_index=0,
                    text=text,
                ),
                self._event(
                    "response.reasoning_summary_part.done",
                    item_id=item["id"],
                    output_index=index,
                    summary_index=0,
                    part={"type": "summary_text", "text": text},
                ),
                self._event("response.output_item.done", output_index=index, item=dict(item)),
            ]
        item["status"] = "completed"
        part = item["content"][0]
        return [
            self._event(
                "response.output_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=part["text"],
                logprobs=[],
            ),
            self._event(
                "response.content_part.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=dict(part),
            ),
            self._event("response.output_item.done", output_index=index, item=dict(item)),
        ]

    def _call(self, call: Mapping[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        function = call.get("function") or {}
        item = self._calls.get(call["index"])
        if item is None:
            events += self._close_open()
            fields = call_item_fields(self._tools, function.get("name", ""), "")
            custom = fields["type"] == "custom_tool_call"
            item = {
                "id": new_id("ctc" if custom else "fc"),
                "type": fields["type"],
                "call_id": call.get("id", ""),
                **{k: v for k, v in fields.items() if k != "type"},
                "status": "in_progress",
            }
            self._calls[call["index"]] = item
            self._offered[call["index"]] = function.get("name", "")
            self.output.append(item)
            events.append(
                self._event(
                    "response.output_item.added",
                    output_index=len(self.output) - 1,
                    item=dict(item),
                )
            )
        if (piece := function.get("arguments")) and item["type"] == "custom_tool_call":
            self._custom_args[call["index"]] = self._custom_args.get(call["index"], "") + piece
        elif piece:
            item["arguments"] += piece
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=self.output.index(item),
                    delta=piece,
                )
            )
        return events

    # -------------------------------------------------------------- ending

    def finish(self, usage: dict[str, Any], *, finish_reason: str | None) -> list[dict[str, Any]]:
        """Close every item and end with ``response.completed`` (or ``.incomplete``)."""
        events = self._close_open()
        for key, item in self._calls.items():
            item["status"] = "completed"
            index = self.output.index(item)
            if item["type"] == "custom_tool_call":
                args = self._custom_args.get(key, "{}")
                item["input"] = call_item_fields(self._tools, self._offered[key], args)["input"]
                events.append(
                    self._event(
                        "response.custom_tool_call_input.done",
                        item_id=item["id"],
                        output_index=index,
                        input=item["input"],
                    )
                )
            else:
                events.append(
                    self._event(
                        "response.function_call_arguments.done",
                        item_id=item["id"],
                        output_index=index,
                        arguments=item["arguments"],
                    )
                )
            events.append(
                self._event("response.output_item.done", output_index=index, item=dict(item))
            )
        self.usage = usage
        if finish_reason == "length":
            self.status, self.incomplete_reason = "incomplete", "max_output_tokens"
        elif finish_reason == "content_filter":
            self.status, self.incomplete_reason = "incomplete", "content_filter"
        else:
            self.status = "completed"
        kind = "response.completed" if self.status == "completed" else "response.incomplete"
        events.append(self._event(kind, response=self.response))
        return events

    def fail(self, code: str | None, message: str) -> list[dict[str, Any]]:
        """End with ``response.failed`` carrying the error."""
        self.status = "failed"
        self.error = {"code": code or "server_error", "message": message}
        if self._image is not None:  # its bytes never came
            self._image["status"] = "failed"
        return [self._event("response.failed", response=self.response)]


def responses_usage(chat_usage: Mapping[str, Any]) -> dict[str, Any]:
    """Chat-completions ``usage`` in the Responses shape."""
    details = chat_usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": chat_usage["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": chat_usage["completion_tokens"],
        "output_tokens_details": {"reasoning_tokens": details.get("reasoning_tokens", 0)},
        "total_tokens": chat_usage["total_tokens"],
    }


def output_text(output: Sequence[Mapping[str, Any]]) -> str:
    """All output_text of the message items, joined (what the SDK's ``output_text`` shows)."""
    return "".join(
        part.get("text", "")
        for item in output
        if item.get("type") == "message"
        for part in item.get("content", [])
        if part.get("type") == "output_text"
    )
