"""Helpers for the tool-call tests: the tools, and events merged into a comparable result."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from chat2api.convert.tools import (
    CallArgumentsDelta,
    CallDone,
    CallInvalid,
    CallStarted,
    FunctionTool,
    TextOut,
    ToolCallParser,
    ToolEvent,
    parse_tools,
)

TOOLS: list[FunctionTool] = asyncio.run(
    parse_tools(
        [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather in a city.",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string"},
                            "unit": {"type": "string", "enum": ["c", "f"]},
                        },
                        "required": ["city"],
                    },
                },
            },
            {
                "type": "function",
                "function": {
                    "name": "search",
                    "description": "Search the web.",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "query": {"type": "string"},
                            "limit": {"type": "integer"},
                            "flags": {"type": "array"},
                            "exact": {"type": ["boolean", "null"]},
                        },
                        "required": ["query"],
                    },
                },
            },
            {"type": "function", "function": {"name": "now"}},
        ]
    )
)


@dataclass
class Call:
    """Everything the events said about one call index."""

    name: str | None = None
    call_id: str | None = None
    args: str = ""
    done: str | None = None
    invalid: CallInvalid | None = None
    order: list[str] = field(default_factory=list)


@dataclass
class Merged:
    """Events merged so that any chunking of the same text compares equal."""

    text: str
    calls: dict[int, Call]

    def comparable(self) -> tuple[str, list[tuple[object, ...]]]:
        """The merged result without the random call ids."""
        return self.text, [
            (i, c.name, c.args, c.done, c.invalid, _squash(c.order))
            for i, c in sorted(self.calls.items())
        ]


def _squash(order: list[str]) -> list[str]:
    out: list[str] = []
    for kind in order:
        if not out or out[-1] != kind:
            out.append(kind)
    return out


def merge(events: Iterable[ToolEvent]) -> Merged:
    """Concatenate text and per-call argument deltas; check event order on the way."""
    text: list[str] = []
    calls: dict[int, Call] = {}
    for event in events:
        if isinstance(event, TextOut):
            assert event.text, "empty TextOut"
            assert not calls, "text after a call"
            text.append(event.text)
            continue
        call = calls.setdefault(event.index, Call())
        assert call.done is None and call.invalid is None, "event after the end of a call"
        if isinstance(event, CallStarted):
            assert not call.order, "CallStarted twice"
            call.name, call.call_id = event.name, event.call_id
            call.order.append("started")
        elif isinstance(event, CallArgumentsDelta):
            assert call.name is not None, "arguments before CallStarted"
            assert event.text, "empty delta"
            call.args += event.text
            call.order.append("delta")
        elif isinstance(event, CallDone):
            assert call.args == event.arguments, "deltas do not add up to the arguments"
            call.done = event.arguments
            call.order.append("done")
        else:
            assert isinstance(event, CallInvalid)
            call.invalid = event
            call.order.append("invalid")
    return Merged("".join(text), calls)


def run(text: str, chunks: Sequence[int] | None = None, **kw: bool) -> Merged:
    """Feed ``text`` whole, or cut at the given offsets, and merge the events."""
    parser = ToolCallParser(TOOLS, **kw)
    events: list[ToolEvent] = []
    cuts = [0, *(chunks or []), len(text)]
    for a, b in itertools.pairwise(cuts):
        events += parser.feed(text[a:b])
    events += parser.close()
    return merge(events)


def run_chars(text: str, **kw: bool) -> Merged:
    """Feed ``text`` one character at a time."""
    return run(text, list(range(1, len(text))), **kw)
