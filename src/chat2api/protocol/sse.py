"""Server-sent events, decoded exactly as the WHATWG HTML standard says.

https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

Contract (as in h11's readers): ``feed`` takes any slice of the byte stream,
returns the events completed by it, and keeps the rest; chunk boundaries
never change the result. Lines end at ``\\r\\n``, ``\\r`` or ``\\n`` and nowhere
else (``str.splitlines`` would also split on ``\\x0b``, ``\\x85``, ``\\u2028`` …,
so a regex is used). A ``\\r`` that ends one chunk may be the first half of a
``\\r\\n`` whose ``\\n`` starts the next chunk; a flag remembers that. Bytes are
decoded as UTF-8 incrementally with replacement characters, as the standard
requires, so decoding never fails. At end of stream an event that was not
terminated by a blank line is discarded (the standard again), so ``flush``
only resets the decoder.

The work per chunk is a handful of ``str`` operations per line; there is no
per-byte Python loop.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from chat2api.protocol.errors import LineTooLong

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SSEDecoder", "ServerSentEvent"]

DEFAULT_MAX_EVENT_SIZE = 32 * 1024 * 1024
"""Characters one line, or the data of one event, may hold before we give up."""

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event. ``id`` is the last event ID seen so far (sticky)."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Incremental ``text/event-stream`` decoder: ``feed(bytes) -> list[event]``."""

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self._max = max_event_size
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False  # the BOM may only be stripped at the very start
        self._trailing_cr = False
        self._partial: list[str] = []  # pieces of the current unterminated line
        self._partial_len = 0
        # Per-event buffers.
        self._event = ""
        self._data: list[str] = []
        self._data_len = 0
        self._retry: int | None = None
        # Sticky across events, as the standard says.
        self._last_id: str | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode ``chunk`` and return the events it completes."""
        text = self._utf8.decode(chunk)
        if not text:
            return []
        if not self._started:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
                if not text:
                    return []
        if self._trailing_cr:
            self._trailing_cr = False
            if text[0] == "\n":  # second half of a "\r\n" split across chunks
                text = text[1:]
                if not text:
                    return []
        if "\n" not in text and "\r" not in text:
            self._partial.append(text)
            self._partial_len += len(text)
            if self._partial_len > self._max:
                raise LineTooLong(f"SSE line longer than {self._max} characters")
            return []
        if self._partial:
            self._partial.append(text)
            text = "".join(self._partial)
            self._partial.clear()
        self._trailing_cr = text[-1] == "\r"
        lines = _LINE_END.split(text)
        rest = lines.pop()
        if rest:
            self._partial.append(rest)
        self._partial_len = len(rest)
        if self._partial_len > self._max:
            raise LineTooLong(f"SSE line longer than {self._max} characters")
        return self._lines(lines)

    def flush(self) -> list[ServerSentEvent]:
        """End of stream: drop any unterminated event (per the standard) and reset."""
        self._utf8.reset()
        self._started = False
        self._trailing_cr = False
        self._partial.clear()
        self._partial_len = 0
        self._event = ""
        self._data = []
        self._data_len = 0
        self._retry = None
        return []

    def _lines(self, lines: list[str]) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(
                        ServerSentEvent(
                            self._event or "message",
                            "\n".join(self._data),
                            self._last_id,
                            self._retry,
                        )
                    )
                    self._data = []
                    self._data_len = 0
                self._event = ""
                self._retry = None
                continue
            if line[0] == ":":  # comment
                continue
            name, _, value = line.partition(":")
            if value and value[0] == " ":
                value = value[1:]
            if name == "data":
                self._data.append(value)
                self._data_len += len(value) + 1
                if self._data_len > self._max:
                    raise LineTooLong(f"SSE event data longer than {self._max} characters")
            elif name == "event":
                self._event = value
            elif name == "id":
                if "\0" not in value:
                    self._last_id = value
            elif name == "retry" and value.isascii() and value.isdigit():
                self._retry = int(value)
        return events
