"""Private-use rich-text markers in answer text (spec 5.4, last bullet).

Since 2025 the answer text carries citation and widget markers made of
private-use characters: ``\\ue200cite\\ue202turn0search3\\ue201`` (a span
opened by U+E200 and closed by U+E201, fields separated by U+E202), plus stray
U+E203, U+E204 and U+E206. None of it is meant for a reader; the sources a
span points at arrive separately (``Citation`` events).

The rule, on the whole text (``strip_markers``):

* a U+E200 opens a span that runs to the *next* U+E201, both included; the
  span is removed whole (spans do not nest);
* a U+E200 whose U+E201 does not follow within ``MAX_SPAN`` characters (or
  never comes) is not a span: that U+E200 alone is dropped and the text after
  it is kept;
* every other U+E201 .. U+E206 character is dropped.

``MarkerFilter`` applies the same rule incrementally: from an unmatched
U+E200 it holds text back until the span closes, the window is exceeded, or
``flush()`` is called (end of the message or of the stream). Because the
rule is defined on the concatenated text, any split of the input gives the
same concatenated output. Text without any marker costs one regex search.
"""

from __future__ import annotations

import re

__all__ = ["MAX_SPAN", "MarkerFilter", "strip_markers"]

OPEN = "\ue200"
CLOSE = "\ue201"
MAX_SPAN = 4096
"""Longest span (characters after U+E200, up to and including U+E201) removed whole."""

_ANY = re.compile("[\ue200-\ue206]")
_STRAY = re.compile("[\ue201-\ue206]")


class MarkerFilter:
    """Incremental marker stripper for one message's text: ``feed`` then ``flush``."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held = ""  # empty, or text starting with an unmatched OPEN

    @property
    def holding(self) -> bool:
        """True while text after an unmatched U+E200 is held back."""
        return bool(self._held)

    def feed(self, text: str) -> str:
        """Return the part of ``text`` that can be shown now, markers removed."""
        if self._held:
            text = self._held + text
            self._held = ""
        elif text.isascii() or _ANY.search(text) is None:  # isascii: a flag, no scan
            return text
        return self._scan(text, final=False)

    def flush(self) -> str:
        """Release held text (minus markers): the span will never close."""
        held, self._held = self._held, ""
        return self._scan(held, final=True) if held else ""

    def _scan(self, text: str, *, final: bool) -> str:
        out: list[str] = []
        i = 0
        n = len(text)
        while True:
            j = text.find(OPEN, i)
            if j == -1:
                out.append(_STRAY.sub("", text[i:]) if i else _STRAY.sub("", text))
                break
            if j > i:
                out.append(_STRAY.sub("", text[i:j]))
            k = text.find(CLOSE, j + 1, j + 1 + MAX_SPAN)
            if k != -1:
                i = k + 1  # a whole span: drop it
            elif not final and n - j <= MAX_SPAN:
                self._held = text[j:]  # its CLOSE may still come within the window
                break
            else:
                i = j + 1  # not a span: drop the opener only
        return "".join(out)


def strip_markers(text: str) -> str:
    """The whole-text rule: ``text`` with every marker span and stray marker removed."""
    marks = MarkerFilter()
    return marks.feed(text) + marks.flush()
