"""Recognising tool calls in the model's streamed answer text (sans-IO).

The model writes a call as a block (see docs/tools.md)::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

``ToolCallParser.feed(chunk)`` returns events as soon as they are decided and
never waits for input it does not need: visible text is released at once
except for a suffix that could still become a marker (at most 11 characters),
the name is reported as soon as its string closes, and the arguments stream as
normalized pieces (``repair.JsonNormalizer``), so the pieces of one call
always concatenate to its final ``CallDone.arguments``, repairs included.

Markdown code (fenced blocks and inline spans) is tracked as the text goes by:
a marker inside code is an example, not a call, and stays visible text.
Outside code, marker text is never visible. Once the first block opens, no
more text is visible (text between and after calls is dropped); with
``parallel=False`` the blocks after the first are dropped too and counted in
``dropped_calls``.

Events depend only on the text, never on how it was split into chunks; only
the chunking of ``TextOut`` and ``CallArgumentsDelta`` pieces varies.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

from chat2api.convert.tools.repair import JsonNormalizer, JsonRepairError, repair_arguments
from chat2api.convert.tools.schema import FunctionTool, validate_arguments

__all__ = [
    "CALL_END",
    "CALL_START",
    "CallArgumentsDelta",
    "CallDone",
    "CallInvalid",
    "CallStarted",
    "TextOut",
    "ToolCallParser",
    "ToolEvent",
    "new_call_id",
]

CALL_START: Final = "<tool_call>"
CALL_END: Final = "</tool_call>"
_MARKER_RE = re.compile(r"</?tool_call>")
_ALPHABET = string.ascii_letters + string.digits


def new_call_id() -> str:
    """A fresh OpenAI-style call id: ``call_`` and 24 random letters and digits."""
    return "call_" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


@dataclass(frozen=True, slots=True)
class TextOut:
    """Visible answer text (the message ``content``)."""

    text: str


@dataclass(frozen=True, slots=True)
class CallStarted:
    """Call ``index`` to a known tool has begun; its name is final."""

    index: int
    call_id: str
    name: str


@dataclass(frozen=True, slots=True)
class CallArgumentsDelta:
    """The next piece of call ``index``'s arguments text."""

    index: int
    text: str


@dataclass(frozen=True, slots=True)
class CallDone:
    """Call ``index`` is complete; ``arguments`` is compact JSON that fits the schema."""

    index: int
    arguments: str


@dataclass(frozen=True, slots=True)
class CallInvalid:
    """Block ``index`` is not a usable call; ``raw`` is the text between its markers."""

    index: int
    raw: str
    reason: str


ToolEvent: TypeAlias = TextOut | CallStarted | CallArgumentsDelta | CallDone | CallInvalid


def _marker_prefix_len(text: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of a marker."""
    start = text.find("<", max(0, len(text) - len(CALL_END) + 1))
    while start >= 0:
        tail = text[start:]
        if CALL_START.startswith(tail) or CALL_END.startswith(tail):
            return len(text) - start
        start = text.find("<", start + 1)
    return 0


# -- one call block ----------------------------------------------------------

_PRE, _KEY, _VALUE, _AFTER, _DONE, _BROKEN = range(6)
_KEY_RE = re.compile(r"""[ \t\r\n]*(?:"((?:[^"\\]|\\.)*)"|'([^'\\]*)')[ \t\r\n]*:""", re.DOTALL)
_KEY_PREFIX_RE = re.compile(
    r"""[ \t\r\n]*(?:"(?:[^"\\]|\\.)*(?:"[ \t\r\n]*|\\)?|'[^'\\]*(?:'[ \t\r\n]*)?)?\Z""", re.DOTALL
)
_WS_RE = re.compile(r"[ \t\r\n]*")
_ARGUMENT_KEYS = frozenset({"arguments", "parameters"})


class _Block:
    """The JSON object of one call block, read incrementally."""

    def __init__(
        self,
        index: int,
        tools: dict[str, FunctionTool],
        call_id: Callable[[], str],
        emit: Callable[[ToolEvent], None] | None,
    ) -> None:
        self.index = index
        self._tools = tools
        self._call_id = call_id
        self._emit = emit  # None: a dropped block, read for nothing
        self._raw: list[str] = []
        self._buf = ""
        self._state = _PRE
        self._error = ""
        self._key = ""
        self._value: JsonNormalizer | None = None
        self._value_out: list[str] = []
        self._name: str | None = None
        self._started = False  # CallStarted emitted
        self._args: list[str] | None = None  # normalized arguments pieces so far
        self._args_sent = 0  # how many of them went out as deltas
        self._args_encoded = False  # arguments written as a JSON string

    def feed(self, text: str) -> None:
        if not text:
            return
        self._raw.append(text)
        if self._state in (_DONE, _BROKEN):
            return
        self._buf += text
        try:
            self._run()
        except ValueError as exc:  # JsonRepairError, or a key json cannot decode
            self._break(str(exc))

    def _break(self, reason: str) -> None:
        self._state = _BROKEN
        self._error = reason
        self._buf = ""

    def _run(self) -> None:
        while self._buf:
            state = self._state
            if state == _PRE:
                m = _WS_RE.match(self._buf)
                assert m is not None
                rest = self._buf[m.end() :]
                if not rest:
                    self._buf = ""
                elif rest[0] == "{":
                    self._buf = rest[1:]
                    self._state = _KEY
                elif rest[0] in "`~":  # a code fence around the object: skip its line
                    newline = rest.find("\n")
                    if newline < 0:
                        self._buf = rest
                        return
                    self._buf = rest[newline + 1 :]
                else:
                    self._break("a call must hold one JSON object")
            elif state == _KEY:
                m = _WS_RE.match(self._buf)
                assert m is not None
                if m.end() < len(self._buf) and self._buf[m.end()] == "}":
                    self._buf = ""
                    self._state = _DONE
                    continue
                km = _KEY_RE.match(self._buf)
                if km is None:
                    if not _KEY_PREFIX_RE.match(self._buf):
                        self._break("expected a quoted key in the call object")
                    return
                if km.group(1) is not None:
                    self._key = json.loads(f'"{km.group(1)}"')
                else:
                    self._key = km.group(2)
                if (self._key == "name" and self._name is not None) or (
                    self._key in _ARGUMENT_KEYS and self._args is not None
                ):
                    self._break(f"the call object has {self._key!r} twice")
                    return
                self._buf = self._buf[km.end() :]
                self._value = JsonNormalizer()
                self._value_out = []
                self._state = _VALUE
            elif state == _VALUE:
                self._read_value()
            elif state == _AFTER:
                m = _WS_RE.match(self._buf)
                assert m is not None
                rest = self._buf[m.end() :]
                if not rest:
                    self._buf = ""
                elif rest[0] == ",":
                    self._buf = rest[1:]
                    self._state = _KEY
                elif rest[0] == "}":
                    self._buf = ""
                    self._state = _DONE
                else:
                    self._break(f"unexpected {rest[0]!r} in the call object")
            else:
                self._buf = ""

    def _read_value(self) -> None:
        value = self._value
        assert value is not None
        if self._key in _ARGUMENT_KEYS and self._args is None and not self._value_out:
            m = _WS_RE.match(self._buf)
            assert m is not None
            if m.end() == len(self._buf):
                self._buf = ""
                return
            self._args = []
            self._args_encoded = self._buf[m.end()] in "\"'"
        out = self._args if self._key in _ARGUMENT_KEYS and self._args is not None else None
        target = out if out is not None else self._value_out
        end = value.feed(self._buf, target)
        self._buf = "" if end < 0 else self._buf[end:]
        if out is not None and not self._args_encoded:
            self._send_args()
        if end >= 0:
            self._value_done()

    def _value_done(self) -> None:
        self._state = _AFTER
        if self._key == "name":
            name = json.loads("".join(self._value_out))
            if not isinstance(name, str):
                self._break('"name" must be a string')
                return
            self._name = name
            self._start()

    def _start(self) -> None:
        if self._name not in self._tools or self._emit is None or self._started:
            return
        self._started = True
        self._emit(CallStarted(self.index, self._call_id(), self._name))
        if not self._args_encoded:
            self._send_args()

    def _send_args(self) -> None:
        if not self._started or self._args is None or self._emit is None:
            return
        if len(self._args) > self._args_sent:
            text = "".join(self._args[self._args_sent :])
            self._args_sent = len(self._args)
            if text:
                self._emit(CallArgumentsDelta(self.index, text))

    def end(self, *, closed: bool) -> None:
        """The block ends: at its end marker (``closed``) or at the end of the answer."""
        if self._emit is None:
            return
        raw = "".join(self._raw)
        reason = self._finish(closed)
        if reason is None:
            reason, arguments = self._arguments()
            if reason is None:
                self._emit(CallDone(self.index, arguments))
                return
        self._emit(CallInvalid(self.index, raw, reason))

    def _finish(self, closed: bool) -> str | None:
        """Why the block's object is unusable, after closing what the end marker implies."""
        if self._state == _BROKEN:
            return self._error
        if self._state == _DONE:
            return None
        if not closed:
            return f"the call was cut off before {CALL_END}"
        if self._state == _PRE:
            return "the call block is empty"
        if self._state == _KEY and self._buf.strip():
            return "the call object ends inside a key"
        if self._state == _VALUE:
            value = self._value
            assert value is not None
            if self._key in _ARGUMENT_KEYS and self._args is None:
                return "the call object ends before its arguments"
            target = self._args if self._args is not None else self._value_out
            try:
                value.finish(target)
            except JsonRepairError as exc:
                return str(exc)
            if self._args is not None and not self._args_encoded:
                self._send_args()
            self._value_done()
            if self._state == _BROKEN:
                return self._error
        self._state = _DONE  # the object's own closing brace was missing: unambiguous
        return None

    def _arguments(self) -> tuple[str | None, str]:
        """(why not usable, final arguments) once the object is complete."""
        if self._name is None:
            return 'the call has no "name"', ""
        tool = self._tools.get(self._name)
        if tool is None:
            known = ", ".join(self._tools) or "none"
            return f"unknown tool {self._name!r}; the tools are: {known}", ""
        if self._args is None:
            arguments = "{}"
        elif self._args_encoded:
            inner = json.loads("".join(self._args))  # normalized, so valid
            fixed = repair_arguments(inner) if isinstance(inner, str) else None
            if fixed is None:
                return '"arguments" is a string that is not a JSON object', ""
            arguments = fixed
        else:
            arguments = "".join(self._args)
        if not self._args_encoded and self._args is not None:
            self._send_args()  # pieces read before the name was known
        value = json.loads(arguments)
        if not isinstance(value, dict):
            return '"arguments" must be a JSON object', ""
        error = validate_arguments(tool, value)
        if error is not None:
            return error, ""
        if self._args is None or self._args_encoded:
            assert self._emit is not None
            self._emit(CallArgumentsDelta(self.index, arguments))
        return None, arguments


# -- the answer text ---------------------------------------------------------

# Code context of the visible text, and where the scanner is in its line.
_NORMAL, _INLINE, _FENCE = range(3)
_BOL, _RUN, _TRAIL, _MID = range(4)
_NORMAL_STOP = re.compile(r"[`<\n]")
_INLINE_STOP = re.compile(r"[`\n]")
_RUN_RE = {"`": re.compile(r"`*"), "~": re.compile(r"~*")}
_SPACE_TAB = re.compile(r"[ \t]*")
# What the text scan stopped at.
_ALL, _START, _END, _HOLD = range(4)


class ToolCallParser:
    """Splits a streamed answer into visible text and tool calls (``feed``, then ``close``)."""

    def __init__(
        self,
        tools: Sequence[FunctionTool],
        *,
        parallel: bool = True,
        call_id: Callable[[], str] = new_call_id,
    ) -> None:
        self._tools = {tool.name: tool for tool in tools}
        self._parallel = parallel
        self._call_id = call_id
        self._buf = ""
        self._block: _Block | None = None
        self._blocks = 0
        self._closed = False
        self._events: list[ToolEvent] = []
        #: Call blocks dropped because ``parallel`` is false.
        self.dropped_calls = 0
        # Markdown code tracking.
        self._ctx = _NORMAL
        self._line = _BOL
        self._indent = 0
        self._run_char = ""
        self._run_len = 0
        self._run_bol = False
        self._inline = 0
        self._fence = ""

    def feed(self, text: str) -> list[ToolEvent]:
        """Events decided by one more chunk of answer text."""
        if self._closed:
            raise RuntimeError("feed() after close()")
        self._events = []
        self._buf += text
        self._pump(final=False)
        return self._events

    def close(self) -> list[ToolEvent]:
        """Events at the end of the answer: held-back text, an unfinished call."""
        if self._closed:
            return []
        self._events = []
        self._pump(final=True)
        if self._block is not None:
            self._block.feed(self._buf)
            self._block.end(closed=False)
            self._block = None
        self._buf = ""
        self._closed = True
        return self._events

    def _emit(self, event: ToolEvent) -> None:
        self._events.append(event)

    def _pump(self, *, final: bool) -> None:
        while self._buf:
            if self._block is not None:
                m = _MARKER_RE.search(self._buf)
                if m is None:
                    if final:
                        return  # close() ends the block
                    keep = _marker_prefix_len(self._buf)
                    self._block.feed(self._buf[: len(self._buf) - keep])
                    self._buf = self._buf[len(self._buf) - keep :]
                    return
                self._block.feed(self._buf[: m.start()])
                self._block.end(closed=True)
                self._block = None
                self._buf = self._buf[m.end() :]
                if m.group() == CALL_START:
                    self._open_block()
                else:
                    self._ctx, self._line = _NORMAL, _MID
                continue
            end, resume, what = self._scan(self._buf, final)
            if end and self._blocks == 0:
                self._events.append(TextOut(self._buf[:end]))
            self._buf = self._buf[resume:]
            if what == _START:
                self._open_block()
            elif what in (_HOLD, _ALL):
                return
            # _END: a stray end marker is dropped; scan on

    def _open_block(self) -> None:
        dropped = self._blocks > 0 and not self._parallel
        if dropped:
            self.dropped_calls += 1
        self._block = _Block(
            self._blocks, self._tools, self._call_id, None if dropped else self._emit
        )
        self._blocks += 1

    def _scan(self, s: str, final: bool) -> tuple[int, int, int]:
        """Advance over visible text: (its end, where to resume, what stopped the scan)."""
        i, n = 0, len(s)
        while i < n:
            line = self._line
            if line == _BOL:
                c = s[i]
                if c == " " and self._indent < 3:
                    self._indent += 1
                    i += 1
                    continue
                if (c in "`~" and self._ctx == _NORMAL) or (
                    self._ctx == _FENCE and c == self._fence[0]
                ):
                    self._line, self._run_char, self._run_len, self._run_bol = _RUN, c, 0, True
                else:
                    self._line = _MID
                continue
            if line == _RUN:
                m = _RUN_RE[self._run_char].match(s, i)
                assert m is not None
                self._run_len += m.end() - i
                i = m.end()
                if i < n:
                    self._end_run()
                continue
            if line == _TRAIL:
                m = _SPACE_TAB.match(s, i)
                assert m is not None
                i = m.end()
                if i < n:
                    if s[i] == "\n":
                        self._ctx = _NORMAL
                        self._new_line()
                        i += 1
                    else:
                        self._line = _MID
                continue
            if self._ctx == _FENCE:
                j = s.find("\n", i)
                if j < 0:
                    return n, n, _ALL
                self._new_line()
                i = j + 1
                continue
            m = (_INLINE_STOP if self._ctx == _INLINE else _NORMAL_STOP).search(s, i)
            if m is None:
                return n, n, _ALL
            j = m.start()
            c = s[j]
            if c == "\n":
                self._ctx = _NORMAL  # an unclosed inline span ends with its line
                self._new_line()
                i = j + 1
            elif c == "`":
                self._line, self._run_char, self._run_len, self._run_bol = _RUN, c, 0, False
                i = j
            elif s.startswith(CALL_START, j):
                return j, j + len(CALL_START), _START
            elif s.startswith(CALL_END, j):
                return j, j + len(CALL_END), _END
            elif not final and (CALL_START.startswith(s[j:]) or CALL_END.startswith(s[j:])):
                return j, j, _HOLD
            else:
                i = j + 1
        return n, n, _ALL

    def _new_line(self) -> None:
        self._line = _BOL
        self._indent = 0

    def _end_run(self) -> None:
        char, length = self._run_char, self._run_len
        self._line = _MID
        if self._ctx == _FENCE:
            if length >= len(self._fence):
                self._line = _TRAIL
        elif self._ctx == _INLINE:
            if length == self._inline:
                self._ctx = _NORMAL
        elif self._run_bol and length >= 3:
            self._ctx = _FENCE
            self._fence = char * length
        elif char == "`":
            self._ctx = _INLINE
            self._inline = length
