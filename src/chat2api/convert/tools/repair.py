"""A tolerant, incremental JSON normalizer for tool-call arguments (pure).

Models write arguments as JSON, but not always valid JSON. ``JsonNormalizer``
reads one JSON value chunk by chunk and writes its *normalized* form: the
same tokens with insignificant whitespace removed, and the unambiguous
mistakes fixed on the way (see ``FIXES``). Each written piece is final: a
piece is written only once nothing that can still arrive would change it (a
comma waits for the value after it, so a trailing comma can be dropped; a bare
word waits for its end, so ``True`` can become ``true``). Because of that the
tool-call parser can stream the pieces as argument deltas and their
concatenation is exactly the final, repaired arguments string.

Anything else (comments, unquoted keys, ``NaN``, a truncated string) is a
``JsonRepairError``: there is no single obvious intended reading.
"""

from __future__ import annotations

import json
import re
from typing import Final

__all__ = ["FIXES", "JsonNormalizer", "JsonRepairError", "repair_arguments", "strip_code_fence"]

#: The fixes the normalizer applies, by the name it records in ``fixes``.
FIXES: Final = (
    "trailing comma",
    "missing closing bracket",
    "single-quoted string",
    "python literal",
    "control character in string",
    "invalid escape",
    "code fence",
    "double-encoded",
)


class JsonRepairError(ValueError):
    """The text is not JSON and cannot be repaired unambiguously."""


# What the normalizer expects next outside strings.
_VALUE, _KEY_OR_CLOSE, _KEY, _COLON, _COMMA_OR_CLOSE, _VALUE_OR_CLOSE = range(6)

_WS_RE = re.compile(r"[ \t\r\n]*")
_BARE_RE = re.compile(r"[A-Za-z0-9+\-.]*")
_BARE_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
_NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_LITERALS: Final = {
    "true": "true",
    "false": "false",
    "null": "null",
    "True": "true",
    "False": "false",
    "None": "null",
}
# Where a plain run inside a string stops: its quote, a backslash, a control
# character, and (in a single-quoted string) a double quote that needs escaping.
_STOP_DQ = re.compile(r'["\\\x00-\x1f]')
_STOP_SQ = re.compile(r'[\'"\\\x00-\x1f]')
_CONTROL: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_SIMPLE_ESCAPES = frozenset('"\\/bfnrt')
_HEX = frozenset("0123456789abcdefABCDEF")
_FENCE_RE = re.compile(r"\A(```|~~~)[^\n]*\n(.*?)\n?[ \t]*\1[ \t]*\Z", re.DOTALL)


class JsonNormalizer:
    """Reads one JSON value incrementally; appends its normalized text to ``out``.

    ``feed`` returns the index in its chunk just past the end of the value, or
    -1 when the whole chunk was consumed and the value is not complete yet.
    ``finish`` declares the end of input (closing brackets the model left
    open). Both raise ``JsonRepairError``; ``fixes`` names what was repaired.
    """

    def __init__(self) -> None:
        self.done = False
        self.fixes: set[str] = set()
        self._stack: list[str] = []  # the closing bracket of each open container
        self._expect = _VALUE
        self._quote = ""  # the open string's quote, "" outside strings
        self._is_key = False
        self._escape = ""  # an escape sequence read in part, from its backslash
        self._bare = ""  # a bare word (number or literal) read in part
        self._comma = False  # a comma read, not written until a value follows it

    def feed(self, text: str, out: list[str]) -> int:
        """Consume ``text``; return the index just past the value's end, else -1."""
        i, n = 0, len(text)
        while i < n:
            if self.done:
                return i
            if self._quote:
                i = self._string(text, i, out)
                continue
            if self._bare:
                m = _BARE_RE.match(text, i)
                assert m is not None  # the pattern matches the empty string
                self._bare += m.group()
                i = m.end()
                if i < n:
                    self._end_bare(out)
                continue
            c = text[i]
            if c in " \t\r\n":
                m = _WS_RE.match(text, i)
                assert m is not None
                i = m.end()
                continue
            self._token(c, out)
            i += 1
        return i if self.done else -1

    def finish(self, out: list[str]) -> None:
        """End of input: complete the value if that is unambiguous, else raise."""
        if self.done:
            return
        if self._quote:
            raise JsonRepairError("the text ends inside a string")
        if self._bare:
            self._end_bare(out)
            if self.done:
                return
        if not self._stack:
            raise JsonRepairError("no JSON value")
        if self._comma or self._expect not in (_COMMA_OR_CLOSE, _KEY_OR_CLOSE, _VALUE_OR_CLOSE):
            raise JsonRepairError("the JSON text is cut off")
        out.append("".join(reversed(self._stack)))
        self._stack.clear()
        self.fixes.add("missing closing bracket")
        self.done = True

    # -- outside strings -------------------------------------------------

    def _token(self, c: str, out: list[str]) -> None:
        expect = self._expect
        if expect in (_VALUE, _VALUE_OR_CLOSE):
            if c == "]" and self._stack and self._stack[-1] == "]":
                if expect == _VALUE_OR_CLOSE or self._comma:
                    self._close(c, out)
                    return
            elif c in "{[":
                self._flush_comma(out)
                out.append(c)
                self._stack.append("}" if c == "{" else "]")
                self._expect = _KEY_OR_CLOSE if c == "{" else _VALUE_OR_CLOSE
                return
            elif c in "\"'":
                self._open_string(c, out, is_key=False)
                return
            elif c in _BARE_START:
                self._flush_comma(out)
                self._bare = c
                return
            raise JsonRepairError(f"unexpected {c!r} where a value should be")
        if expect in (_KEY_OR_CLOSE, _KEY):
            if c in "\"'":
                self._open_string(c, out, is_key=True)
                return
            if c == "}" and (expect == _KEY_OR_CLOSE or self._comma):
                self._close(c, out)
                return
            raise JsonRepairError(f"unexpected {c!r} where a quoted key should be")
        if expect == _COLON:
            if c == ":":
                out.append(":")
                self._expect = _VALUE
                return
            raise JsonRepairError(f"unexpected {c!r} where ':' should be")
        # _COMMA_OR_CLOSE
        if c == ",":
            self._comma = True
            self._expect = _KEY if self._stack[-1] == "}" else _VALUE
            return
        if c == self._stack[-1]:
            self._close(c, out)
            return
        raise JsonRepairError(f"unexpected {c!r} after a value")

    def _flush_comma(self, out: list[str]) -> None:
        if self._comma:
            out.append(",")
            self._comma = False

    def _close(self, c: str, out: list[str]) -> None:
        if self._comma:
            self._comma = False
            self.fixes.add("trailing comma")
        self._stack.pop()
        out.append(c)
        self._after_value()

    def _after_value(self) -> None:
        if self._stack:
            self._expect = _COMMA_OR_CLOSE
        else:
            self.done = True

    def _end_bare(self, out: list[str]) -> None:
        word, self._bare = self._bare, ""
        literal = _LITERALS.get(word)
        if literal is not None:
            if literal != word:
                self.fixes.add("python literal")
            out.append(literal)
        elif _NUMBER_RE.match(word):
            out.append(word)
        else:
            raise JsonRepairError(f"{word[:40]!r} is not a JSON value")
        self._after_value()

    # -- inside strings --------------------------------------------------

    def _open_string(self, quote: str, out: list[str], *, is_key: bool) -> None:
        self._flush_comma(out)
        if quote == "'":
            self.fixes.add("single-quoted string")
        self._quote = quote
        self._is_key = is_key
        out.append('"')

    def _string(self, text: str, i: int, out: list[str]) -> int:
        n = len(text)
        quote = self._quote
        stop = _STOP_DQ if quote == '"' else _STOP_SQ
        while i < n:
            if self._escape:
                i = self._escape_more(text, i, out)
                continue
            m = stop.search(text, i)
            if m is None:
                out.append(text[i:])
                return n
            j = m.start()
            if j > i:
                out.append(text[i:j])
            c = text[j]
            i = j + 1
            if c == quote:
                out.append('"')
                self._quote = ""
                if self._is_key:
                    self._expect = _COLON
                else:
                    self._after_value()
                return i
            if c == '"':  # inside a single-quoted string
                out.append('\\"')
            elif c == "\\":
                self._escape = "\\"
            else:
                self.fixes.add("control character in string")
                out.append(_CONTROL.get(c) or f"\\u{ord(c):04x}")
        return n

    def _escape_more(self, text: str, i: int, out: list[str]) -> int:
        if self._escape == "\\":
            c = text[i]
            if c in _SIMPLE_ESCAPES:
                out.append("\\" + c)
                self._escape = ""
                return i + 1
            if c == "u":
                self._escape = "\\u"
                return i + 1
            if c == "'":  # \' in either kind of string means a plain apostrophe
                if self._quote == '"':
                    self.fixes.add("invalid escape")
                out.append("'")
                self._escape = ""
                return i + 1
            # \d, \s, \x …: the model meant a literal backslash (regexes, paths).
            self.fixes.add("invalid escape")
            out.append("\\\\")
            self._escape = ""
            return i  # the character after the backslash is read as usual
        while i < len(text) and len(self._escape) < 6:
            c = text[i]
            if c not in _HEX:
                raise JsonRepairError("a \\u escape needs four hex digits")
            self._escape += c
            i += 1
        if len(self._escape) == 6:
            out.append(self._escape)
            self._escape = ""
        return i


def strip_code_fence(text: str) -> str:
    """``text`` without a markdown code fence wrapped around all of it."""
    m = _FENCE_RE.match(text.strip())
    return m.group(2) if m else text


def _normalize(text: str) -> str:
    normalizer = JsonNormalizer()
    out: list[str] = []
    end = normalizer.feed(text, out)
    if end < 0:
        normalizer.finish(out)
    elif text[end:].strip():
        raise JsonRepairError("text after the JSON value")
    return "".join(out)


def repair_arguments(raw: str) -> str | None:
    """The compact arguments object for ``raw``, repaired if needed; None if not repairable.

    Valid JSON comes back normalized (insignificant whitespace removed, tokens
    as written). Repairs: trailing commas, missing closing brackets at the end,
    single-quoted strings, Python ``True``/``False``/``None``, raw control
    characters inside strings, invalid backslash escapes, a code fence around
    the whole text, and a JSON string whose content is the object
    (double-encoded). The result must be a JSON object.
    """
    try:
        text = _normalize(strip_code_fence(raw))
        if text.startswith('"'):
            inner = json.loads(text)
            text = _normalize(strip_code_fence(inner))
        value = json.loads(text)
    except (JsonRepairError, ValueError):
        return None
    return text if isinstance(value, dict) else None
