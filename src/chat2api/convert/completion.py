"""Upstream events → OpenAI chat completion chunks and completions (pure).

``Answer`` folds the typed event stream into what the client sees, applying
the tool-call engine, the response format, ``stop`` and ``max_tokens`` on
the way. Streaming asks it for one chunk per event;
non-streaming folds the same events and asks for one completion at the end,
so the two can never disagree. Token counts come from a ``TokenCounter``
(a worker process, see ``convert.usage``), asked only when needed.
"""

from __future__ import annotations

import string
import time
from typing import Any

from chat2api.convert.generated import (
    Links,
    SandboxRewriter,
    citation_markdown,
    code_block,
    image_markdown,
    output_block,
)
from chat2api.convert.messages import random_block
from chat2api.convert.models import ModelRoute
from chat2api.convert.stop import StopCut
from chat2api.convert.structured import StructuredAnswer
from chat2api.convert.tools import ToolCalls
from chat2api.convert.usage import TokenCounter, Turns, prompt_texts, prompt_tokens
from chat2api.protocol.events import (
    Citation,
    CodeRun,
    Event,
    ExecutionOutput,
    Finished,
    ImageGenerated,
    Metadata,
    Moderated,
    ReasoningDelta,
    TextDelta,
)
from chat2api.values import PromptTurn

_ID_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 29
# Byte b < 248 (4 × 62) spells _ID_ALPHABET[b % 62]; 248..255 are dropped, so
# each kept byte is a uniform letter, as ``secrets.choice`` draws them.
_ID_TABLE = (_ID_ALPHABET * 5)[:256].encode("ascii")
_ID_REJECT = bytes(range(4 * len(_ID_ALPHABET), 256))
MODERATION_REFUSAL = "I'm sorry, but I can't help with that request."
CITATION_KEY = "_citation"  # on the delta that adds a citation's link: its url and title
# With ``image_items`` (Responses' image_generation tool), a generated image is a
# delta of its own: ``{IMAGE_KEY: ImageGenerated}``, then, once its bytes are
# downloaded (``answering``), ``{IMAGE_KEY: ImageGenerated, IMAGE_BYTES_KEY: bytes}``.
IMAGE_KEY = "_image"
IMAGE_BYTES_KEY = "_image_bytes"


def _content(text: str) -> list[dict[str, Any]]:
    return [{"content": text}] if text else []


def completion_id() -> str:
    """``chatcmpl-`` + 29 random alphanumerics, like OpenAI's ids."""
    # Bytes of the OS RNG from the pool the message ids draw from, mapped to
    # letters by one translate (rejection sampling: about 1 byte in 32 dropped).
    letters = b""
    while len(letters) < _ID_LENGTH:
        letters += (random_block() + random_block()).translate(_ID_TABLE, _ID_REJECT)
    return "chatcmpl-" + letters[:_ID_LENGTH].decode("ascii")


class Answer:
    """The client-visible answer, built incrementally from upstream events."""

    def __init__(
        self,
        route: ModelRoute,
        prompt: Turns,
        token_limit: int | None,
        tokens: TokenCounter,
        tools: ToolCalls | None = None,
        *,
        structured: StructuredAnswer | None = None,
        stop: StopCut | None = None,
        links: Links | None = None,
        legacy_functions: bool = False,
        image_items: bool = False,
    ) -> None:
        self.route = route
        self.tools = tools
        self.structured = structured
        self.stop = stop
        self.links = links  # generated files and images become download links
        self.image_items = image_items  # images are deltas of their own, not links in the text
        self._sandbox = SandboxRewriter()
        self.citations: set[str] = set()  # URLs already cited
        self.annotations: list[dict[str, Any]] = []  # url_citation of the message, as OpenAI
        self.id = completion_id()
        self.created = int(time.time())
        self.prompt = prompt
        self.token_limit = token_limit
        self.tokens = tokens
        # The text so far, in pieces: ``content += text`` per event would copy
        # all of it each time (an attribute is never extended in place).
        self._pieces: list[str] = []
        self.reasoning = ""
        self.finish_reason: str | None = None
        self.conversation_id: str | None = None
        self.message_id: str | None = None
        self.model_slug: str | None = None
        self.legacy_functions = (
            legacy_functions  # asked with ``functions``: answer ``function_call``
        )

    @property
    def content(self) -> str:
        """The answer's text so far."""
        pieces = self._pieces
        if len(pieces) > 1:
            pieces[:] = ["".join(pieces)]
        return pieces[0] if pieces else ""

    @content.setter
    def content(self, text: str) -> None:
        self._pieces = [text]

    @property
    def done(self) -> bool:
        """True once the answer has a finish reason; later events are ignored."""
        return self.finish_reason is not None

    @property
    def wants_correction(self) -> bool:
        """The attempt just ended was unusable; the caller asks the model once more."""
        if self.done:
            return False
        if self.tools is not None and self.tools.wants_correction:
            return True
        return self.structured is not None and self.structured.wants_correction

    def correction_turns(self) -> list[PromptTurn]:
        """The model's answer and the request to correct it (see ``wants_correction``)."""
        if self.tools is not None and self.tools.wants_correction:
            return self.tools.correction_turns()
        assert self.structured is not None
        if self.tools is not None:
            self.tools.restart()
        return self.structured.correction_turns()

    async def apply(self, event: Event) -> list[dict[str, Any]]:
        """Fold one event; returns the chunk deltas it adds (content, reasoning, tool calls)."""
        if self.done:
            return []
        if isinstance(event, TextDelta):
            if (
                self.tools is None
                and self.structured is None
                and self.stop is None
                and self.token_limit is None
            ):
                return _content(await self._add_plain(event.text))
            if self.tools is None:
                return _content(await self._add_text(self._shaped(event.text)))
            text, calls = self.tools.feed(event.text)
            return _content(await self._add_text(self._shaped(text))) + calls
        if isinstance(event, ReasoningDelta):
            self.reasoning += event.text
            return [{"reasoning_content": event.text}]
        if isinstance(event, CodeRun):
            return _content(await self._add_text(code_block(event)))
        if isinstance(event, ExecutionOutput):
            return _content(await self._add_text(output_block(event)))
        if isinstance(event, ImageGenerated):
            if self.image_items:
                return [{IMAGE_KEY: event}]
            if self.links is None:
                return []
            return _content(
                await self._add_text(
                    image_markdown(await self.links.image(event, self.conversation_id))
                )
            )
        if isinstance(event, Citation):
            if event.url in self.citations:
                return []
            self.citations.add(event.url)
            link = _content(await self._add_text(citation_markdown(event)))
            if link and link[0]["content"] == citation_markdown(event):
                # For Responses' url_citation annotations; chunks leave it out.
                title = event.title or event.url
                link[0][CITATION_KEY] = {"url": event.url, "title": title}
                end = len(self.content)
                span = {"start_index": end - len(link[0]["content"].lstrip()), "end_index": end}
                self.annotations.append(
                    {
                        "type": "url_citation",
                        "url_citation": {**span, "title": title, "url": event.url},
                    }
                )
            return link
        if isinstance(event, Metadata):
            self.conversation_id = event.conversation_id or self.conversation_id
            self.message_id = event.message_id or self.message_id
            self.model_slug = event.model_slug or self.model_slug
        elif isinstance(event, Finished):
            held = await self._rewritten(self._sandbox.close())
            deltas: list[dict[str, Any]] = _content(await self._add_visible(held))
            if self.tools is not None:
                text, calls = self.tools.close()
                deltas += _content(await self._add_text(self._shaped(text))) + calls
                if self.tools.wants_correction:
                    return deltas  # not done: the caller asks the model once more
                if self.tools.invalid:  # the correction did not help: show what it wrote
                    deltas += _content(await self._add_text(self.tools.give_up()))
                if self.tools.calls:
                    deltas += _content(await self._end_stop())
                    self.finish_reason = "tool_calls"
                    return deltas
            if self.structured is not None and not self.done:
                rest = self.structured.close()  # raises when it cannot be used
                if self.structured.wants_correction:
                    return deltas
                deltas += _content(await self._add_text(rest))
            deltas += _content(await self._end_stop())
            if self.finish_reason is None:
                self.finish_reason = "length" if event.finish_type == "max_tokens" else "stop"
            return deltas
        elif isinstance(event, Moderated) and event.blocked:
            added = "" if self.content else await self._add_text(MODERATION_REFUSAL)
            self.finish_reason = self.finish_reason or "content_filter"
            return _content(added)
        return []

    @property
    def plain(self) -> bool:
        """No tool parser, response format, ``stop`` or token limit shapes the text."""
        return (
            self.tools is None
            and self.structured is None
            and self.stop is None
            and self.token_limit is None
        )

    def fold_plain(self, text: str) -> str | list[str | tuple[str, str]]:
        """``apply(TextDelta(text))`` of a ``plain`` answer not ``done``, without a coroutine.

        Returns the content added (the delta is ``{"content": it}`` when not
        empty), or, when download links must be made first, the pieces to
        give :meth:`add_rewritten`.
        """
        if self.links is not None and text:
            pieces = self._sandbox.feed(text)
            if len(pieces) != 1 or type(pieces[0]) is not str:
                return pieces
            text = pieces[0]
        self._pieces.append(text)
        return text

    async def add_rewritten(self, pieces: list[str | tuple[str, str]]) -> str:
        """The end of :meth:`fold_plain` that awaits download links."""
        text = await self._rewritten(pieces)
        self._pieces.append(text)
        return text

    async def _add_plain(self, text: str) -> str:
        """``_add_text`` when no tool parser, format, stop or token limit shapes the text."""
        added = self.fold_plain(text)
        return added if isinstance(added, str) else await self.add_rewritten(added)

    async def _add_text(self, text: str) -> str:
        if self.links is not None and text:
            text = await self._rewritten(self._sandbox.feed(text))
        return await self._add_visible(text)

    async def _rewritten(self, pieces: list[str | tuple[str, str]]) -> str:
        """Text with each ``sandbox:`` target replaced by a download link."""
        out: list[str] = []
        for piece in pieces:
            if isinstance(piece, tuple):
                assert self.links is not None
                out.append(
                    await self.links.sandbox(piece[1], self.conversation_id, self.message_id)
                )
            else:
                out.append(piece)
        return "".join(out)

    def _shaped(self, text: str) -> str:
        """What the response format lets out of ``text`` now (all of it without one)."""
        return text if self.structured is None else self.structured.feed(text)

    async def _end_stop(self) -> str:
        """Text held back as a possible start of a stop sequence, at the answer's end."""
        if self.stop is None or self.done:
            return ""
        return await self._add_limited(self.stop.flush())

    async def _add_visible(self, text: str) -> str:
        stopped = False
        if self.stop is not None:
            if self.done:
                return ""
            text, stopped = self.stop.feed(text)
        added = await self._add_limited(text)
        if stopped and self.finish_reason is None:
            self.finish_reason = "stop"
        return added

    async def _add_limited(self, text: str) -> str:
        if self.token_limit is None:
            self._pieces.append(text)
            return text
        full, cut = await self.tokens.truncate(
            self.content + text, self.token_limit, self.route.encoding
        )
        added = full[len(self.content) :]
        self.content = full
        if cut:
            self.finish_reason = "length"
        return added

    async def usage(self) -> dict[str, Any]:
        """OpenAI ``usage`` counted offline with the model's tokenizer (one worker trip)."""
        texts = prompt_texts(self.prompt)
        calls = self.tools.calls if self.tools is not None else []
        called = "".join(c["function"]["name"] + c["function"]["arguments"] for c in calls)
        counts = await self.tokens.count(
            [*texts, self.content + called, self.reasoning], self.route.encoding
        )
        prompt = prompt_tokens(self.prompt, counts[: len(texts)])
        reasoning = counts[-1]
        completion = counts[-2] + reasoning
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }

    def _extra(self, out: dict[str, Any]) -> dict[str, Any]:
        # Upstream conversation ids ride along as extra top-level fields, which
        # OpenAI SDKs ignore; only useful (and only sent) when history is kept.
        if self.conversation_id is not None:
            out["conversation_id"] = self.conversation_id
        if self.message_id is not None:
            out["message_id"] = self.message_id
        return out

    def _chunk_head(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.route.requested,
            "system_fingerprint": None,
        }

    def chunk(
        self,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        *,
        with_usage_field: bool = False,
        history: bool = False,
    ) -> dict[str, Any]:
        """One ``chat.completion.chunk``."""
        if CITATION_KEY in delta:
            delta = {k: v for k, v in delta.items() if k != CITATION_KEY}
        if self.legacy_functions:
            delta, finish_reason = _legacy_delta(delta), _legacy_finish(finish_reason)
        out = self._chunk_head()
        out["choices"] = [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        ]
        if with_usage_field:
            out["usage"] = None
        return self._extra(out) if history else out

    def usage_chunk(self, usage: dict[str, Any], *, history: bool = False) -> dict[str, Any]:
        """The final chunk of ``stream_options.include_usage``: no choices, ``usage`` set."""
        out = self._chunk_head()
        out["choices"] = []
        out["usage"] = usage
        return self._extra(out) if history else out

    def completion(self, usage: dict[str, Any], *, history: bool = False) -> dict[str, Any]:
        """The non-stream ``chat.completion`` (``usage`` from :meth:`usage`)."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content, "refusal": None}
        finish_reason = self.finish_reason or "stop"
        if self.tools is not None and self.tools.calls:
            message["tool_calls"] = self.tools.calls
            message["content"] = self.content.strip() or None
            if self.legacy_functions:
                message["function_call"] = message.pop("tool_calls")[0]["function"]
                finish_reason = "function_call"
        if self.annotations:
            message["annotations"] = self.annotations
        if self.reasoning:
            message["reasoning_content"] = self.reasoning
        out: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.route.requested,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage,
        }
        return self._extra(out) if history else out


def _legacy_delta(delta: dict[str, Any]) -> dict[str, Any]:
    """A ``tool_calls`` delta in the legacy ``function_call`` shape (one call only)."""
    calls = delta.get("tool_calls")
    if not calls:
        return delta
    out = {k: v for k, v in delta.items() if k != "tool_calls"}
    out["function_call"] = dict(calls[0].get("function") or {})
    return out


def _legacy_finish(finish_reason: str | None) -> str | None:
    return "function_call" if finish_reason == "tool_calls" else finish_reason
