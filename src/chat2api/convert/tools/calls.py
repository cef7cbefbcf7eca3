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
* with ``parallel_tool_calls: false`` only the first valid call is kept;
* ``tool_choice`` ``"required"`` or a named function (``choice``): visible
  text is held until the answer ends; an answer without a (fitting) call,
  or a call to another function, asks for the correction round too, and
  when the second answer still does not call, ``close`` raises
  ``ModelOutputError`` (``tool_choice_not_followed``) instead of passing
  prose off as the forced call.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from chat2api.convert.tools.parser import (
    CALL_END,
    CALL_START,
    CallArgumentsDelta,
    CallDone,
    CallInvalid,
    CallStarted,
    TextOut,
    ToolCallParser,
    ToolEvent,
)
from chat2api.convert.tools.prompt import call_syntax, correction_message
from chat2api.convert.tools.schema import FunctionTool
from chat2api.errors import ModelOutputError
from chat2api.values import PromptTurn


class ToolCalls:
    """Recognises, holds, numbers and (once) corrects the calls of one answer."""

    def __init__(
        self, tools: Sequence[FunctionTool], *, parallel: bool = True, choice: str = "auto"
    ) -> None:
        self._tools = {tool.name: tool for tool in tools}
        self._parallel = parallel
        self._choice = choice  # "auto", "required" or the one function's name
        self._forced = choice not in ("auto", "none")
        self._held_text: list[str] = []  # forced: visible text waits for the call
        self.missing: str | None = None  # forced: why the answer was not the call asked for
        self.calls: list[dict[str, Any]] = []  # OpenAI ``tool_calls``, final
        self.invalid: list[tuple[CallInvalid, str | None]] = []  # with the name, if known
        self.corrected = False
        self._round_text = ""
        self._new_round()

    def _new_round(self) -> None:
        self._parser = ToolCallParser(list(self._tools.values()), parallel=self._parallel)
        self._held: dict[int, list[ToolEvent]] = {}
        self._round_text = ""
        self._held_text = []
        self.missing = None

    def restart(self) -> None:
        """A new attempt asked for by something else (the response format's correction)."""
        self._new_round()

    @property
    def wants_correction(self) -> bool:
        """An unusable or missing call was seen and the one correction round is unused."""
        return (bool(self.invalid) or self.missing is not None) and not self.corrected

    def feed(self, text: str) -> tuple[str, list[dict[str, Any]]]:
        """Visible text and tool-call deltas decided by more answer text."""
        self._round_text += text
        return self._handle(self._parser.feed(text))

    def close(self) -> tuple[str, list[dict[str, Any]]]:
        """The same, at the end of the answer.

        Raises ``ModelOutputError`` when a forced ``tool_choice`` was still not
        followed after the correction round.
        """
        text, deltas = self._handle(self._parser.close())
        if not self._forced:
            return text, deltas
        if self.calls:
            return "".join(self._held_text), deltas
        if self.invalid and not self.corrected:
            return "", deltas  # corrected as any unusable call
        wanted = "a function" if self._choice == "required" else f"the function {self._choice}"
        if self.corrected:
            raise ModelOutputError(
                f"The model did not call {wanted} as tool_choice requires, even after it "
                "was asked again.",
                code="tool_choice_not_followed",
                param="tool_choice",
            )
        self.missing = f"tool_choice requires calling {wanted}, and the answer made no call"
        return "", deltas

    def _handle(self, events: list[ToolEvent]) -> tuple[str, list[dict[str, Any]]]:
        text: list[str] = []
        deltas: list[dict[str, Any]] = []
        for event in events:
            if isinstance(event, TextOut):
                (self._held_text if self._forced else text).append(event.text)
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
        if self._forced and self._choice != "required" and started.name != self._choice:
            raw = f'{{"name": {json.dumps(started.name)}, "arguments": {done.arguments}}}'
            reason = f"tool_choice requires calling {self._choice}, not {started.name}"
            self.invalid.append((CallInvalid(done.index, raw, reason), self._choice))
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
        if self.invalid:
            invalid, name = self.invalid[0]
            tool = self._tools.get(name) if name else None
            message = correction_message(invalid, tool)
        else:
            tool = self._tools.get(self._choice)
            message = call_syntax(self.missing or "", tool)
        turns: list[PromptTurn] = [
            PromptTurn("assistant", self._round_text),
            PromptTurn("user", message),
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
