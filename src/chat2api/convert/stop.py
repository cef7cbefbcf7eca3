"""``stop`` sequences cut out of streamed text (pure).

The answer arrives in pieces of any size, so a stop sequence can be split
across them. ``StopCut`` passes text on at once except a tail that could
still be the start of a stop sequence; that tail waits for the next piece
(or the answer's end, ``flush``). When a sequence is complete, the text
before it is the last text of the answer; the sequence and everything
after it are never sent.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["StopCut"]


class StopCut:
    """Finds the first of ``stops`` in text fed piece by piece."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._longest = max((len(s) for s in self._stops), default=0)
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> tuple[str, bool]:
        """``(text to send, whether a stop sequence ended the answer)``."""
        if self.stopped:
            return "", True
        text = self._held + text
        self._held = ""
        cut = min((i for s in self._stops if (i := text.find(s)) >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            return text[:cut], True
        keep = self._partial_tail(text)
        if keep:
            self._held = text[-keep:]
            text = text[:-keep]
        return text, False

    def flush(self) -> str:
        """The held tail: the answer ended without completing a stop sequence."""
        held, self._held = self._held, ""
        return held

    def _partial_tail(self, text: str) -> int:
        """Length of the longest end of ``text`` that begins some stop sequence."""
        for size in range(min(len(text), self._longest - 1), 0, -1):
            tail = text[-size:]
            if any(s.startswith(tail) for s in self._stops):
                return size
        return 0
