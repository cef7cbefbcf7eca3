"""SSE records of one conversation turn, in the legacy and the delta-v1 encodings.

A turn is described once (`Turn`) and rendered to a list of ready-to-write
byte strings before the first byte goes out, so the streaming loop only moves
bytes (benchmarks run a thousand of these at once). The shapes follow spec 5.2
(legacy full snapshots) and 5.3 (delta v1, with carry-forward of `p`/`o`/`c`).
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from chat2api.sim.replies import THOUGHT_SUMMARY

DONE = b"data: [DONE]\n\n"
STOP_TOKENS = [200002]
CUT_FAULTS = frozenset({"truncated", "cut"})
MALFORMED_RECORD = b'data: {"message": {"id": "broken", "content": \n\n'


@dataclass(frozen=True, slots=True)
class EchoMessage:
    """A message of the request, re-sent at the start of the stream."""

    id: str
    role: str
    content: dict[str, Any]
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolStep:
    """A message streamed before the answer: a tool call or a tool's result (spec 1.10, 5.2).

    `content` is the message's final content. With `text_chunks` (a `code`
    call) `content.text` is streamed in those appends and the message ends
    `finished_successfully`, `end_turn: false`. With `pending` (picture_v2) it
    is sent `in_progress`, then each `(path, value)` of `progress` (a path
    inside `content`) is replaced, and it is still `in_progress` when the
    stream ends. Otherwise it is sent once, finished (`end_turn: null`).
    """

    id: str
    role: str
    name: str | None
    recipient: str
    content: dict[str, Any]
    metadata: dict[str, Any]
    text_chunks: tuple[str, ...] | None = None
    pending: bool = False
    progress: tuple[tuple[str, Any], ...] = ()

    def streamed_content(self) -> dict[str, Any]:
        """The content as it stands at the end of the stream (progress applied)."""
        content = copy.deepcopy(self.content)
        for path, value in self.progress:
            set_path(content, path, value)
        return content


def set_path(root: Any, path: str, value: Any) -> None:
    """Set `value` at a JSON Pointer `path` inside `root` (no escapes needed here)."""
    keys = path.split("/")[1:]
    parent = root
    for key in keys[:-1]:
        parent = parent[int(key)] if isinstance(parent, list) else parent[key]
    if isinstance(parent, list):
        parent[int(keys[-1])] = value
    else:
        parent[keys[-1]] = value


@dataclass(frozen=True, slots=True)
class Turn:
    """Everything the stream of one answer depends on."""

    conversation_id: str
    new_conversation: bool
    model_slug: str
    default_model_slug: str
    plan_type: str
    echoes: tuple[EchoMessage, ...]
    parent_id: str
    chunks: tuple[str, ...]
    thought_chunks: tuple[str, ...] | None = None
    title: str = "New chat"
    finish_type: str = "stop"
    fault: str | None = None
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # Echoed (v1 only) before the request's own messages: earlier messages of the branch.
    history: tuple[EchoMessage, ...] = ()
    answer_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # Generated content (#sim:image, #sim:sandbox, …): messages before the answer,
    # no answer at all (picture_v2 still running), extra final answer metadata.
    steps: tuple[ToolStep, ...] = ()
    answerless: bool = False
    answer_extra: dict[str, Any] | None = None
    tool_name: str | None = None
    thoughts_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    recap_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    create_time: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class Rendered:
    """The bytes of a stream; `complete` is False when the stream is cut on purpose."""

    records: list[bytes]
    complete: bool = True


def _data(obj: object) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def message_object(
    msg_id: str,
    role: str,
    content: dict[str, Any],
    *,
    status: str,
    end_turn: bool | None,
    metadata: dict[str, Any],
    channel: str | None,
    weight: float = 1.0,
    create_time: float | None = None,
    name: str | None = None,
    recipient: str = "all",
) -> dict[str, Any]:
    """A full message object (spec 5.2 field set), as streamed and as kept in a conversation."""
    return {
        "id": msg_id,
        "author": {"role": role, "name": name, "metadata": {}},
        "create_time": create_time,
        "update_time": None,
        "content": content,
        "status": status,
        "end_turn": end_turn,
        "weight": weight,
        "metadata": metadata,
        "recipient": recipient,
        "channel": channel,
    }


class _Plan:
    """Message ids and metadata shared by both encodings of one turn."""

    def __init__(self, turn: Turn) -> None:
        self.turn = turn
        self.now = turn.create_time
        self.thoughts_id = turn.thoughts_id
        self.recap_id = turn.recap_id
        self.answer_id = turn.answer_id
        parent = self.recap_id if turn.thought_chunks is not None else turn.parent_id
        self.step_parents: list[str] = []
        for step in turn.steps:
            self.step_parents.append(parent)
            parent = step.id
        self.answer_parent = parent
        self.last_id = turn.steps[-1].id if turn.answerless and turn.steps else turn.answer_id
        cut = max(1, len(turn.chunks) // 2)
        self.fault_at = min(cut, len(turn.chunks))

    def echo(self, echo: EchoMessage) -> dict[str, Any]:
        return message_object(
            echo.id,
            echo.role,
            echo.content,
            status="finished_successfully",
            end_turn=None,
            metadata={"timestamp_": "absolute", "message_type": None, **echo.metadata},
            channel=None,
            create_time=self.now,
        )

    def answer_metadata(self) -> dict[str, Any]:
        t = self.turn
        return {
            "citations": [],
            "content_references": [],
            "gizmo_id": None,
            "message_type": "next",
            "model_slug": t.model_slug,
            "default_model_slug": t.default_model_slug,
            "parent_id": self.answer_parent,
            "model_switcher_deny": [],
            "request_id": t.request_id,
            "timestamp_": "absolute",
        }

    def finish_metadata(self) -> dict[str, Any]:
        return {
            "is_complete": True,
            "finish_details": {"type": self.turn.finish_type, "stop_tokens": STOP_TOKENS},
            **(self.turn.answer_extra or {}),
        }

    def step(
        self, index: int, content: dict[str, Any], status: str, end_turn: bool | None
    ) -> dict[str, Any]:
        step = self.turn.steps[index]
        return message_object(
            step.id,
            step.role,
            content,
            status=status,
            end_turn=end_turn,
            metadata={
                **step.metadata,
                "model_slug": self.turn.model_slug,
                "default_model_slug": self.turn.default_model_slug,
                "parent_id": self.step_parents[index],
                "request_id": self.turn.request_id,
                "message_type": "next",
                "timestamp_": "absolute",
            },
            channel=None,
            create_time=self.now,
            name=step.name,
            recipient=step.recipient,
        )

    def step_final(self, index: int) -> dict[str, Any]:
        """A step as it stands when the stream ends."""
        step = self.turn.steps[index]
        if step.pending:
            return self.step(index, step.streamed_content(), "in_progress", None)
        end_turn = False if step.text_chunks is not None else None
        return self.step(index, step.content, "finished_successfully", end_turn)

    def thoughts_metadata(self) -> dict[str, Any]:
        return {
            "model_slug": self.turn.model_slug,
            "parent_id": self.turn.parent_id,
            "initial_text": "Thinking",
            "reasoning_status": "is_reasoning",
            "message_type": "next",
        }

    def recap(self) -> dict[str, Any]:
        return message_object(
            self.recap_id,
            "assistant",
            {"content_type": "reasoning_recap", "content": "Thought for 1s"},
            status="finished_successfully",
            end_turn=False,
            metadata={
                "finished_duration_sec": 1,
                "reasoning_title": THOUGHT_SUMMARY,
                "model_slug": self.turn.model_slug,
                "parent_id": self.thoughts_id,
            },
            channel=None,
            create_time=self.now,
        )

    def moderation(self) -> dict[str, Any]:
        t = self.turn
        return {
            "type": "moderation",
            "moderation_response": {
                "flagged": True,
                "blocked": True,
                "moderation_id": "modr-" + uuid.uuid4().hex[:24],
            },
            "conversation_id": t.conversation_id,
            "message_id": t.parent_id,
            "is_completion": False,
        }

    def title_record(self) -> dict[str, Any]:
        return {
            "type": "title_generation",
            "title": self.turn.title,
            "conversation_id": self.turn.conversation_id,
        }


def finished_messages(turn: Turn) -> list[dict[str, Any]]:
    """The turn's messages as they stand once the stream is complete (for a kept conversation).

    The request's messages (as echoed), then, unless the turn streams no full
    answer (`moderation`, `stream_error`, `truncated`, `cut`), the thoughts and
    recap (reasoning turns) and the answer. Each message's parent is the one
    before it; the first one's parent is the caller's business.
    """
    plan = _Plan(turn)
    out = [plan.echo(echo) for echo in turn.echoes]
    if turn.fault in ("moderation", "stream_error") or turn.fault in CUT_FAULTS:
        return out
    if turn.thought_chunks is not None:
        out.append(
            message_object(
                plan.thoughts_id,
                "assistant",
                {
                    "content_type": "thoughts",
                    "thoughts": [
                        {
                            "summary": THOUGHT_SUMMARY,
                            "content": "".join(turn.thought_chunks),
                            "chunks": [],
                            "finished": True,
                        }
                    ],
                    "source_analysis_msg_id": plan.thoughts_id,
                },
                status="finished_successfully",
                end_turn=False,
                metadata={
                    **plan.thoughts_metadata(),
                    "finished_text": "Thought for 1s",
                    "reasoning_status": "reasoning_ended",
                },
                channel="analysis",
                create_time=plan.now,
            )
        )
        out.append(plan.recap())
    out.extend(plan.step_final(i) for i in range(len(turn.steps)))
    if turn.answerless:
        return out
    out.append(
        message_object(
            plan.answer_id,
            "assistant",
            {"content_type": "text", "parts": ["".join(turn.chunks)]},
            status="finished_successfully",
            end_turn=True,
            metadata={**plan.answer_metadata(), **plan.finish_metadata()},
            channel="final",
            create_time=plan.now,
        )
    )
    return out


# --------------------------------------------------------------------------- legacy


def render_legacy(turn: Turn) -> Rendered:
    """Full-snapshot records (spec 5.2), ending with `[DONE]`."""
    plan = _Plan(turn)
    cid = turn.conversation_id
    out: list[bytes] = []

    def snap(message: dict[str, Any]) -> None:
        out.append(_data({"message": message, "conversation_id": cid, "error": None}))

    def legacy_error() -> None:
        out.append(_data(_legacy_error(cid)))

    for echo in turn.echoes:
        snap(plan.echo(echo))
    if turn.fault == "moderation":
        out.append(_data(plan.moderation()))
        out.append(DONE)
        return Rendered(out)
    if turn.thought_chunks is not None:
        thought = {"summary": THOUGHT_SUMMARY, "content": "", "chunks": [], "finished": False}
        content = {
            "content_type": "thoughts",
            "thoughts": [thought],
            "source_analysis_msg_id": plan.thoughts_id,
        }
        meta = plan.thoughts_metadata()

        def thoughts(status: str, end_turn: bool | None) -> dict[str, Any]:
            return message_object(
                plan.thoughts_id,
                "assistant",
                {**content, "thoughts": [dict(thought)]},
                status=status,
                end_turn=end_turn,
                metadata=dict(meta),
                channel="analysis",
                create_time=plan.now,
            )

        snap(thoughts("in_progress", None))
        for chunk in turn.thought_chunks:
            thought["content"] = str(thought["content"]) + chunk
            snap(thoughts("in_progress", None))
        thought["finished"] = True
        meta.update(finished_text="Thought for 1s", reasoning_status="reasoning_ended")
        snap(thoughts("finished_successfully", False))
        snap(plan.recap())

    for i, step in enumerate(turn.steps):
        if step.text_chunks is not None:
            code = ""
            snap(plan.step(i, {**step.content, "text": code}, "in_progress", None))
            for chunk in step.text_chunks:
                code += chunk
                snap(plan.step(i, {**step.content, "text": code}, "in_progress", None))
        elif step.pending:
            shown = copy.deepcopy(step.content)
            snap(plan.step(i, copy.deepcopy(shown), "in_progress", None))
            for path, value in step.progress:
                set_path(shown, path, value)
                snap(plan.step(i, copy.deepcopy(shown), "in_progress", None))
            continue
        snap(plan.step_final(i))
    if turn.answerless:
        # The stream ends while the tool is still at work (picture_v2): no answer message.
        if (ended := _fault(turn, out, legacy_error)) is not None:
            return ended
        if turn.new_conversation:
            out.append(_data(plan.title_record()))
        out.append(DONE)
        return Rendered(out)

    meta = plan.answer_metadata()

    def answer(text: str, status: str, end_turn: bool | None) -> dict[str, Any]:
        return message_object(
            plan.answer_id,
            "assistant",
            {"content_type": "text", "parts": [text]},
            status=status,
            end_turn=end_turn,
            metadata=meta,
            channel="final",
            create_time=plan.now,
        )

    snap(answer("", "in_progress", None))
    text = ""
    for i, chunk in enumerate(turn.chunks):
        if i == plan.fault_at and (ended := _fault(turn, out, legacy_error)) is not None:
            return ended
        text += chunk
        snap(answer(text, "in_progress", None))
    # Too few chunks to fail in the middle: fail right before the final snapshot.
    if plan.fault_at >= len(turn.chunks) and (ended := _fault(turn, out, legacy_error)) is not None:
        return ended
    meta = {**meta, **plan.finish_metadata()}
    snap(answer(text, "finished_successfully", True))
    if turn.new_conversation:
        out.append(_data(plan.title_record()))
    out.append(DONE)
    return Rendered(out)


def _fault(turn: Turn, out: list[bytes], write_error: Callable[[], None]) -> Rendered | None:
    """Inject the turn's stream fault here; the rendering when the stream ends at this point.

    A cut ends it without ``[DONE]``; ``stream_error`` writes the error record
    (``write_error``) and ``[DONE]``; ``malformed`` adds a broken record and
    the stream goes on.
    """
    if turn.fault in CUT_FAULTS:
        return Rendered(out, complete=False)
    if turn.fault == "stream_error":
        write_error()
        out.append(DONE)
        return Rendered(out)
    if turn.fault == "malformed":
        out.append(MALFORMED_RECORD)
    return None


def _legacy_error(conversation_id: str) -> dict[str, Any]:
    return {
        "message": None,
        "conversation_id": conversation_id,
        "error": "Something went wrong while generating the response. (sim stream_error)",
    }


# --------------------------------------------------------------------------- delta v1


class _DeltaWriter:
    """Emits `event: delta` records, leaving out `p`, `o`, `c` when they carry forward."""

    def __init__(self, out: list[bytes]) -> None:
        self.out = out
        self.p: str | None = None
        self.o: str | None = None
        self.c: int | None = None

    def op(self, p: str, o: str, v: object, c: int, *, explicit: bool = False) -> None:
        rec: dict[str, Any] = {}
        if explicit or p != self.p:
            rec["p"] = p
        if explicit or o != self.o:
            rec["o"] = o
        rec["v"] = v
        if c != self.c:
            rec["c"] = c
        self.p, self.o, self.c = p, o, c
        self.out.append(b"event: delta\ndata: " + orjson.dumps(rec) + b"\n\n")


def render_v1(turn: Turn) -> Rendered:
    """Delta-encoded records (spec 5.3), ending with the control records and `[DONE]`."""
    plan = _Plan(turn)
    cid = turn.conversation_id
    out: list[bytes] = [b'event: delta_encoding\ndata: "v1"\n\n']
    w = _DeltaWriter(out)

    def root(message: dict[str, Any] | None) -> dict[str, Any]:
        return {"message": message, "conversation_id": cid, "error": None}

    out.append(
        _data(
            {
                "type": "resume_conversation_token",
                "kind": "topic",
                "token": resume_token(turn),
                "conversation_id": cid,
            }
        )
    )
    channel = 0

    def v1_error() -> None:  # on the channel after the current one, whatever it is then
        w.op("", "add", _v1_error(cid), channel + 1, explicit=True)

    hidden = message_object(
        str(uuid.uuid4()),
        "system",
        {"content_type": "text", "parts": [""]},
        status="finished_successfully",
        end_turn=True,
        metadata={"is_visually_hidden_from_conversation": True},
        channel=None,
        weight=0.0,
    )
    w.op("", "add", root(hidden), channel)
    for echo in turn.history:
        channel += 1
        w.op("", "add", root(plan.echo(echo)), channel)
    user_echo: dict[str, Any] | None = None
    for echo in turn.echoes:
        channel += 1
        msg = plan.echo(echo)
        w.op("", "add", root(msg), channel)
        if echo.role == "user":
            user_echo = msg
    if user_echo is not None:
        out.append(
            _data(
                {
                    "type": "input_message",
                    "input_message": {
                        k: user_echo[k] for k in ("id", "author", "content", "status", "recipient")
                    },
                    "conversation_id": cid,
                }
            )
        )
    if turn.fault == "moderation":
        out.append(_data(plan.moderation()))
        _v1_tail(out, plan, with_markers=False)
        return Rendered(out)

    if turn.thought_chunks is not None:
        channel += 1
        thought = {"summary": THOUGHT_SUMMARY, "content": "", "chunks": [], "finished": False}
        msg = message_object(
            plan.thoughts_id,
            "assistant",
            {
                "content_type": "thoughts",
                "thoughts": [thought],
                "source_analysis_msg_id": plan.thoughts_id,
            },
            status="in_progress",
            end_turn=None,
            metadata=plan.thoughts_metadata(),
            channel="analysis",
            create_time=plan.now,
        )
        w.op("", "add", root(msg), channel, explicit=True)
        out.append(_data(_marker(cid, plan.thoughts_id, "cot_token", "first")))
        # Every thought append names its path: a bare {"v"} is reserved for answer text.
        for chunk in turn.thought_chunks:
            w.op("/message/content/thoughts/0/content", "append", chunk, channel, explicit=True)
        w.op(
            "",
            "patch",
            [
                {"p": "/message/content/thoughts/0/finished", "o": "replace", "v": True},
                {"p": "/message/status", "o": "replace", "v": "finished_successfully"},
                {"p": "/message/end_turn", "o": "replace", "v": False},
                {
                    "p": "/message/metadata",
                    "o": "append",
                    "v": {"finished_text": "Thought for 1s", "reasoning_status": "reasoning_ended"},
                },
            ],
            channel,
            explicit=True,
        )
        channel += 1
        w.op("", "add", root(plan.recap()), channel, explicit=True)

    for i, step in enumerate(turn.steps):
        channel += 1
        if step.text_chunks is not None:
            start = plan.step(i, {**step.content, "text": ""}, "in_progress", None)
            w.op("", "add", root(start), channel, explicit=True)
            for j, chunk in enumerate(step.text_chunks):
                w.op("/message/content/text", "append", chunk, channel, explicit=j == 0)
            done = [
                {"p": "/message/status", "o": "replace", "v": "finished_successfully"},
                {"p": "/message/end_turn", "o": "replace", "v": False},
            ]
            w.op("", "patch", done, channel, explicit=True)
        elif step.pending:
            w.op(
                "",
                "add",
                root(plan.step(i, step.content, "in_progress", None)),
                channel,
                explicit=True,
            )
            for path, value in step.progress:
                w.op("/message/content" + path, "replace", value, channel, explicit=True)
        else:
            w.op("", "add", root(plan.step_final(i)), channel, explicit=True)
    if turn.answerless:
        if (ended := _fault(turn, out, v1_error)) is not None:
            return ended
        _v1_tail(out, plan, with_markers=True)
        return Rendered(out)

    channel += 1
    answer = message_object(
        plan.answer_id,
        "assistant",
        {"content_type": "text", "parts": [""]},
        status="in_progress",
        end_turn=None,
        metadata=plan.answer_metadata(),
        channel="final",
        create_time=plan.now,
    )
    w.op("", "add", root(answer), channel)
    out.append(_data(_marker(cid, plan.answer_id, "user_visible_token", "first")))
    chunks = turn.chunks
    last = len(chunks) - 1 if len(chunks) >= 2 else len(chunks)
    for i in range(last):
        if i == plan.fault_at and (ended := _fault(turn, out, v1_error)) is not None:
            return ended
        if i == 0:
            w.op("/message/content/parts/0", "append", chunks[i], channel, explicit=True)
        else:
            w.op("/message/content/parts/0", "append", chunks[i], channel)
    # Too few chunks to fail in the middle: fail right before the final patch.
    if plan.fault_at >= last and (ended := _fault(turn, out, v1_error)) is not None:
        return ended
    ops: list[dict[str, Any]] = []
    if last < len(chunks):
        ops.append({"p": "/message/content/parts/0", "o": "append", "v": chunks[last]})
    ops += [
        {"p": "/message/status", "o": "replace", "v": "finished_successfully"},
        {"p": "/message/end_turn", "o": "replace", "v": True},
        {"p": "/message/metadata", "o": "append", "v": plan.finish_metadata()},
    ]
    w.op("", "patch", ops, channel, explicit=True)
    out.append(_data(_marker(cid, plan.answer_id, "last_token", "last")))
    _v1_tail(out, plan, with_markers=True)
    return Rendered(out)


def _v1_tail(out: list[bytes], plan: _Plan, *, with_markers: bool) -> None:
    turn = plan.turn
    cid = turn.conversation_id
    if turn.new_conversation and with_markers:
        out.append(_data(plan.title_record()))
    out.append(
        _data(
            {
                "type": "server_ste_metadata",
                "metadata": {
                    "plan_type": turn.plan_type,
                    "user_agent": "web_desktop",
                    "tool_invoked": bool(turn.steps),
                    "fast_convo": True,
                    "is_first_turn": turn.new_conversation,
                    "model_slug": turn.model_slug,
                    "did_auto_switch_to_reasoning": False,
                    "message_id": plan.last_id,
                    "request_id": turn.request_id,
                    "turn_exchange_id": str(uuid.uuid4()),
                    "turn_trace_id": str(uuid.uuid4()),
                    **({"tool_name": turn.tool_name} if turn.tool_name else {}),
                },
                "conversation_id": cid,
            }
        )
    )
    out.append(_data({"type": "message_stream_complete", "conversation_id": cid}))
    out.append(
        _data(
            {
                "type": "conversation_detail_metadata",
                "banner_info": None,
                "blocked_features": [],
                "model_limits": [],
                "limits_progress": [
                    {
                        "feature_name": "deep_research",
                        "remaining": 25,
                        "reset_after": "2026-02-04T10:00:00.000000+00:00",
                    }
                ],
                "default_model_slug": turn.default_model_slug,
                "conversation_id": cid,
            }
        )
    )
    out.append(DONE)


def _v1_error(conversation_id: str) -> dict[str, Any]:
    return {
        "message": None,
        "conversation_id": conversation_id,
        "error": "Something went wrong while generating the response. (sim stream_error)",
        "error_code": "internal_error",
    }


def _marker(cid: str, message_id: str, marker: str, event: str) -> dict[str, Any]:
    return {
        "type": "message_marker",
        "conversation_id": cid,
        "message_id": message_id,
        "marker": marker,
        "event": event,
    }


def resume_token(turn: Turn) -> str:
    """The turn's `resume_conversation_token`: opaque, JWT-shaped like the real one, per turn."""
    claims = {"conversation_id": turn.conversation_id, "kind": "topic", "turn": turn.request_id}
    return "eyJhbGciOiJIUzI1NiJ9." + orjson.dumps(claims).hex() + ".sim"
