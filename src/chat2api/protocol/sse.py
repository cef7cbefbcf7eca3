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
        # Between two events: no byte, line or field of an unfinished one held.
        # Then a chunk of whole events decodes to them whatever the other state
        # (the sticky id aside). False whenever unsure.
        self.between_events = False

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode ``chunk`` and return the events it completes."""
        return [ServerSentEvent(*fields) for fields in self.feed_fields(chunk)]

    def feed_fields(self, chunk: bytes) -> list[tuple[str, str, str | None, int | None]]:
        """Like ``feed`` but return ``(event, data, id, retry)`` tuples.

        The fast path for callers that consume events right away: building a
        frozen dataclass costs more than parsing its lines.
        """
        self.between_events = False
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
        if "\r" in text:
            crlf_only = text.replace("\r\n", "\n")
            # A lone CR is rare; only then pay for the regex (on the original
            # text: "\r\r\n" must stay two line ends).
            lines = _LINE_END.split(text) if "\r" in crlf_only else crlf_only.split("\n")
        else:
            lines = text.split("\n")
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
        self.between_events = False
        self._trailing_cr = False
        self._partial.clear()
        self._partial_len = 0
        self._event = ""
        self._data = []
        self._data_len = 0
        self._retry = None
        return []

    def _lines(self, lines: list[str]) -> list[tuple[str, str, str | None, int | None]]:
        events: list[tuple[str, str, str | None, int | None]] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append(
                        (
                            self._event or "message",
                            data[0] if len(data) == 1 else "\n".join(data),
                            self._last_id,
                            self._retry,
                        )
                    )
                    data = self._data = []
                    self._data_len = 0
                self._event = ""
                self._retry = None
                continue
            name, colon, value = line.partition(":")
            if not name:
                if colon:
                    continue  # a comment
            elif value and value[0] == " ":
                value = value[1:]
            if name == "data":
                data.append(value)
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
        self.between_events = (
            not self._partial
            and not data
            and not self._event
            and self._retry is None
            and not self._trailing_cr
            and not self._utf8.buffer
        )
        return events
