"""The tool calls of one answer, as the client receives them (pure).

``ToolCallParser`` finds calls in the streamed text; ``ToolCalls`` decides
what the client sees:

* visible text streams at once;
* a call is held until it is complete and valid (``CallDone``), then sent
  as OpenAI ``tool_calls`` deltas (id and name first, then the argument
  pieces in the order they arrived): a call the model got wrong can then
  still be corrected before the client has acted on any part of it;
* an unusable call (unknown function, arguments that cannot be repaired or
  break the schema) asks for ONE correction round: the caller sends the
  model its own answer and ``correction_turns``; the corrected calls take
  the next indices. If the correction fails too, the unusable call's text
  becomes part of the answer's content.
* with ``parallel_tool_calls: false`` only the first valid call is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chat2api.convert.messages import PromptTurn
from chat2api.convert.tools import (
    CALL_END,
    CALL_START,
    CallArgumentsDelta,
    CallDone,
    CallInvalid,
    CallStarted,
    FunctionTool,
    TextOut,
    ToolCallParser,
    ToolEvent,
    correction_message,
)


class ToolCalls:
    """Recognises, holds, numbers and (once) corrects the calls of one answer."""

    def __init__(self, tools: Sequence[FunctionTool], *, parallel: bool = True) -> None:
        self._tools = {tool.name: tool for tool in tools}
        self._parallel = parallel
        self.calls: list[dict[str, Any]] = []  # OpenAI ``tool_calls``, final
        self.invalid: list[tuple[CallInvalid, str | None]] = []  # with the name, if known
        self.corrected = False
        self._round_text = ""
        self._new_round()

    def _new_round(self) -> None:
        self._parser = ToolCallParser(list(self._tools.values()), parallel=self._parallel)
        self._held: dict[int, list[ToolEvent]] = {}
        self._round_text = ""

    @property
    def wants_correction(self) -> bool:
        """An unusable call was seen and the one correction round is still unused."""
        return bool(self.invalid) and not self.corrected

    def feed(self, text: str) -> tuple[str, list[dict[str, Any]]]:
        """Visible text and tool-call deltas decided by more answer text."""
        self._round_text += text
        return self._handle(self._parser.feed(text))

    def close(self) -> tuple[str, list[dict[str, Any]]]:
        """The same, at the end of the answer."""
        return self._handle(self._parser.close())

    def _handle(self, events: list[ToolEvent]) -> tuple[str, list[dict[str, Any]]]:
        text: list[str] = []
        deltas: list[dict[str, Any]] = []
        for event in events:
            if isinstance(event, TextOut):
                text.append(event.text)
            elif isinstance(event, CallStarted | CallArgumentsDelta):
                self._held.setdefault(event.index, []).append(event)
            elif isinstance(event, CallDone):
                deltas.extend(self._release(event))
            elif isinstance(event, CallInvalid):
                started = [e for e in self._held.pop(event.index, []) if isinstance(e, CallStarted)]
                self.invalid.append((event, started[0].name if started else None))
        return "".join(text), deltas

    def _release(self, done: CallDone) -> list[dict[str, Any]]:
        held = self._held.pop(done.index, [])
        started = next((e for e in held if isinstance(e, CallStarted)), None)
        if started is None or (self.calls and not self._parallel):
            return []
        index = len(self.calls)
        self.calls.append(
            {
                "id": started.call_id,
                "type": "function",
                "function": {"name": started.name, "arguments": done.arguments},
            }
        )
        out: list[dict[str, Any]] = [
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": started.call_id,
                        "type": "function",
                        "function": {"name": started.name, "arguments": ""},
                    }
                ]
            }
        ]
        pieces = [e.text for e in held if isinstance(e, CallArgumentsDelta)]
        if "".join(pieces) != done.arguments:  # never the case by the parser's contract
            pieces = [done.arguments]
        out.extend(
            {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            for piece in pieces
            if piece
        )
        return out

    def correction_turns(self) -> list[PromptTurn]:
        """The model's own answer and the request to redo its first unusable call."""
        invalid, name = self.invalid[0]
        tool = self._tools.get(name) if name else None
        turns: list[PromptTurn] = [
            ("assistant", self._round_text, None),
            ("user", correction_message(invalid, tool), None),
        ]
        self.corrected = True
        self.invalid = []
        self._new_round()
        return turns

    def give_up(self) -> str:
        """The text of calls that stayed unusable, shown to the client as content."""
        text = "\n".join(f"{CALL_START}\n{invalid.raw}\n{CALL_END}" for invalid, _ in self.invalid)
        self.invalid = []
        return text
