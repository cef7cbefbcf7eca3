"""The ChatGPT conversation stream, decoded into typed events.

``ConversationDecoder`` is sans-IO: ``feed(bytes) -> list[Event]`` and
``close() -> list[Event]``; it never awaits and keeps no reference to any
socket. Spec: ``chatgpt-web-protocol.md`` section 5.

One code path for both wire formats
-----------------------------------
Both formats are reduced to *message state*, and events are derived from that
state only ("message state -> events"):

* legacy snapshots (5.2): each ``data:`` record *is* a root object
  ``{"message", "conversation_id", "error"}``;
* delta v1 (5.3): ``event: delta`` records are ops applied to one root object
  per channel ``c`` (``delta.apply_delta``).

After each record the root it touched is *observed*: the message is classified
(5.3.2 answer selection, reasoning, echo, tool traffic) and the visible text of
that message is compared with what was already emitted for it; the new tail
becomes a ``TextDelta`` or ``ReasoningDelta`` (``new[len(prev):]``, the
chat2api rule; text that is rewritten rather than extended is not retracted).

Rules worth knowing
-------------------
* Echoes: a message whose first observed state is already
  ``finished_successfully`` is history re-sent by the server (system, user,
  earlier assistant turns) and never produces events.
* The answer: ``author.role == "assistant"``, ``recipient`` ``all`` or absent,
  ``content_type`` ``text``/``multimodal_text`` (string parts only, joined with
  ``""``), not ``is_visually_hidden_from_conversation``, not
  ``is_thinking_preamble_message``, ``channel`` ``final`` or null.
* Finish: the answer is finished when its ``status`` is
  ``finished_successfully`` (or ``finished_partial_completion``) and
  ``end_turn`` is true -- or ``finish_details.type`` is ``max_tokens`` /
  ``interrupted``, which a length-cut message may carry with ``end_turn``
  false. ``Finished`` is emitted at ``message_stream_complete``, ``[DONE]`` or
  ``close()``, whichever comes first, because v1 may send ``end_turn`` and the
  ``finish_details`` that hold the finish type in separate records. Its
  ``finish_type`` is ``finish_details.type`` with anything unknown mapped to
  ``"stop"``.
* Reasoning rendering (one rule, both formats): a ``content_type: "thoughts"``
  message renders as the ``content`` strings of its thoughts that are
  non-empty, joined with ``"\\n\\n"``; ``summary`` is *not* rendered (it is a
  heading that may still be growing when the content starts, so rendering it
  would break append-only output). An o1-era ``author.role == "tool"`` text
  message seen before the answer starts renders as its string parts. Separate
  reasoning messages are separated by ``"\\n\\n"``. ``reasoning_recap``
  messages produce nothing.
* Metadata: ``Metadata(conversation_id, message_id, model_slug)`` is emitted
  whenever that triple changes. ``message_id`` is the answer's id;
  ``model_slug`` is ``server_ste_metadata``'s ``resolved_model_slug`` or
  ``model_slug`` when one was seen, else the latest assistant message's
  ``metadata.model_slug``.
* Failures: a root with a non-null ``error`` or ``error_code`` (legacy
  ``{"message": null, "error": "..."}``, v1 ``add`` of ``{"error_code": ...}``)
  and a finished assistant ``system_error`` message give ``StreamFailed``; a
  flagged or blocked ``moderation`` record gives ``Moderated``. Each is
  emitted at most once.
* Private-use markers (5.4): answer text goes through ``markers.MarkerFilter``
  (``\ue200…\ue201`` spans removed whole, stray ``\ue201``-``\ue206``
  dropped). Text after an unmatched ``\ue200`` is held back until its span
  closes, the answer message finishes, another answer starts, or the stream
  ends; then it is released minus the markers.
* History vs. this turn: tool events use a narrower echo rule than text. A
  message first seen already finished is *history* only if no assistant/tool
  message has yet been seen in progress; after that, a message that arrives
  finished in one record (legacy tool results usually do) belongs to the turn.
* What the model made besides text (``CodeRun``, ``ExecutionOutput``,
  ``ImageGenerated``, ``Citation``) is read from the same message states by
  the extractors of ``protocol.extract``, which hold their rules. A pending
  image makes the end of the stream legitimate: ``close()`` does not raise,
  and no ``Finished`` is invented for it.
* End: ``message_stream_complete`` and ``data: [DONE]`` set ``done``; records
  after ``[DONE]`` are ignored. At the first end marker (or ``close()``) an
  open code message, held marker text and pending images are flushed, then
  ``Finished``. ``close()`` raises ``StreamTruncated`` when the answer never
  finished and nothing failed, was moderated or is pending.
* Non-JSON data (other than ``[DONE]``, pings and the encoding marker) raises
  ``MalformedEvent``; records with unknown event names are ignored.

Memory and speed (one decoder per open stream)
----------------------------------------------
* v1 echo roots (system and user turns, never the answer) are released from
  the ``DeltaState`` once observed: only messages that may matter are kept.
* A v1 record that only appended text to the answer's single text part, right
  after a full observation went through the answer (still in progress, all
  of its text emitted), is emitted without observing the message again: no
  other field changed, so the full path would add exactly that text.
* A chunk of whole ``event: delta`` records (one ``data:`` line each, the
  way the upstream sends them), while the SSE decoder is between events,
  is split and parsed without it (``_whole_records``); anything else goes
  through the SSE decoder. tests/unit/protocol/test_protocol_fast_paths.py
  checks both against the general path over a varied corpus.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from chat2api.protocol.delta import DeltaState
from chat2api.protocol.errors import (
    MalformedEvent,
    ProtocolError,
    StreamTruncated,
    UnsupportedEncoding,
)
from chat2api.protocol.events import (
    Event,
    Finished,
    FinishType,
    Metadata,
    Moderated,
    ReasoningDelta,
    StreamFailed,
    TextDelta,
)
from chat2api.protocol.extract import (
    FINISHED,
    Citations,
    CodeRuns,
    Images,
    Outputs,
    as_dict,
)
from chat2api.protocol.markers import MarkerFilter
from chat2api.protocol.sse import DEFAULT_MAX_EVENT_SIZE, SSEDecoder

__all__ = ["ConversationDecoder", "decode_stream"]

Format = Literal["legacy", "v1"]

_FINISH_TYPES: dict[str, FinishType] = {"max_tokens": "max_tokens", "interrupted": "interrupted"}
_ANSWER_TYPES = ("text", "multimodal_text")
_REASONING_SEP = "\n\n"


class _Msg:
    """What has been emitted for one message id."""

    __slots__ = ("echo", "emitted", "history", "reasoning")

    def __init__(self, echo: bool, history: bool) -> None:
        self.echo = echo
        self.history = history  # first seen finished before this turn started
        self.emitted = 0  # characters of this message's rendering already sent
        self.reasoning = False  # has this message contributed reasoning text


def _text_parts(root: object) -> list[Any] | None:
    """``root.message.content.parts`` of a plain text message, else None."""
    if not isinstance(root, dict):
        return None
    message = root.get("message")
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    if not isinstance(content, dict) or content.get("content_type") != "text":
        return None
    parts = content.get("parts")
    return parts if isinstance(parts, list) else None


def _string_parts(content: dict[str, Any]) -> str:
    parts = content.get("parts")
    if not isinstance(parts, list):
        return ""
    if len(parts) == 1:  # the common case: no copy
        only = parts[0]
        return only if isinstance(only, str) else ""
    return "".join(p for p in parts if isinstance(p, str))


def _thoughts_text(content: dict[str, Any]) -> str:
    thoughts = content.get("thoughts")
    if not isinstance(thoughts, list):
        return ""
    texts = []
    for thought in thoughts:
        if isinstance(thought, dict):
            text = thought.get("content")
            if isinstance(text, str) and text:
                texts.append(text)
    return _REASONING_SEP.join(texts)


class ConversationDecoder:
    """Incremental decoder of one conversation response body (both formats)."""

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self._sse = SSEDecoder(max_event_size=max_event_size)
        self._delta = DeltaState()
        self._format: Format = "legacy"
        self._msgs: dict[str, _Msg] = {}
        self._conversation_id: str | None = None
        self._answer_id: str | None = None
        self._msg_slug: str | None = None
        self._ste_slug: str | None = None
        self._meta = Metadata()
        self._any_reasoning = False
        self._answer_finish: FinishType | None = None  # set while the answer is finished
        self._finished = False  # Finished was emitted
        self._failed = False
        self._moderated = False
        self._complete = False  # message_stream_complete seen
        self._done_marker = False  # [DONE] seen
        self._closed = False
        self._turn_started = False  # an assistant/tool message was seen in progress
        self._marks = MarkerFilter()  # private-use markers of the current answer
        # What the model made besides text (protocol.extract).
        self._code = CodeRuns()
        self._outputs = Outputs()
        self._images = Images()
        self._citations = Citations()
        self._deferred: ProtocolError | None = None  # raised after the events before it
        # The answer's single text part while it streams: (parts list, its state).
        # A record that only appends to that text skips the full re-reading of
        # the message (``_text_appended``).
        self._fast: tuple[list[Any], _Msg] | None = None
        self._streaming: _Msg | None = None  # set by _answer for an answer in progress
        self._records = 0  # SSE records of the turn decoded so far: a resume's offset
        self._resume_token: str | None = None

    @property
    def format(self) -> Format:
        """``"v1"`` once a ``delta_encoding`` record announced it, else ``"legacy"``."""
        return self._format

    @property
    def conversation_id(self) -> str | None:
        """The upstream conversation's id, once the stream named it."""
        return self._conversation_id

    @property
    def resume_token(self) -> str | None:
        """The ``resume_conversation_token`` of the stream (E3), if it sent one. Secret."""
        return self._resume_token

    def interrupted(self) -> int:
        """The body broke off: drop its unfinished record; the records decoded so far.

        That count is the ``offset`` of ``/f/conversation/resume`` (spec 1.5):
        the resumed body goes on with the next record, into this same state.
        """
        self._sse.flush()
        return self._records

    @property
    def done(self) -> bool:
        """True once ``message_stream_complete`` or ``[DONE]`` was seen."""
        return self._complete or self._done_marker

    def feed(self, chunk: bytes) -> list[Event]:
        """Decode a slice of the response body; return the events it completes.

        A malformed record raises ``ProtocolError``; the events decoded before
        it in the same slice are returned first and the error is raised by the
        next ``feed`` or ``close``, so that nothing already answered is lost.
        """
        if self._deferred is not None:
            raise self._deferred
        out: list[Event] = []
        if (
            chunk.endswith(b"}\n\n")
            and chunk.startswith(_DELTA_HEAD)
            and self._sse.between_events
            and not self._done_marker
        ):
            records = _whole_records(chunk)
            if records is not None:  # whole delta records only: no SSE decoding needed
                try:
                    for record in records:
                        self._records += 1
                        self._delta_record(record, out)
                except ProtocolError as exc:
                    if not out:
                        raise
                    self._deferred = exc
                return out
        try:
            for name, data, _, _ in self._sse.feed_fields(chunk):
                # The first body's encoding record counts; the copy heading a resumed one not.
                if name != "delta_encoding" or self._format != "v1":
                    self._records += 1
                self._record(name, data, out)
        except ProtocolError as exc:
            if not out:
                raise
            self._deferred = exc
        return out

    def close(self) -> list[Event]:
        """End of body: return the last events, or raise ``StreamTruncated``."""
        out: list[Event] = []
        if self._deferred is not None:
            raise self._deferred
        if self._closed:
            return out
        self._closed = True
        for sse in self._sse.flush():
            self._record(sse.event, sse.data, out)
        self._finish(out)
        if (
            not self._finished
            and not self._failed
            and not self._moderated
            and not self._images.pending
        ):
            raise StreamTruncated("the stream ended before the answer finished")
        return out

    # -- records ----------------------------------------------------------

    def _record(self, name: str, data: str, out: list[Event]) -> None:
        if self._done_marker:
            return
        if name == "delta":
            if not data.strip():
                return
            self._delta_record(_loads(data), out)
            return
        self._fast = None
        if name == "message":
            stripped = data.strip()
            if not stripped:
                return  # ping
            if stripped == "[DONE]":
                self._done_marker = True
                self._finish(out)
                return
            obj = _loads(data)
            if not isinstance(obj, dict):
                return
            if "message" in obj or ("error" in obj and "type" not in obj):
                self._observe(obj, out)  # a legacy snapshot (also error records)
            else:
                self._control(obj, out)
        elif name == "delta_encoding":
            encoding = data.strip()
            if encoding not in ('"v1"', "v1"):
                raise UnsupportedEncoding(f"unsupported delta_encoding {encoding[:40]!r}")
            self._format = "v1"

    def _delta_record(self, record: object, out: list[Event]) -> None:
        delta = self._delta
        root = delta.apply(record)
        if self._fast is not None and self._text_appended(out):
            return
        self._streaming = None
        self._observe(root, out)
        if delta.root_set and _is_echo(root):  # never the answer (5.3.2): not kept
            delta.release(delta.channel)
        self._fast = self._answer_text(root)

    def _control(self, obj: dict[str, Any], out: list[Event]) -> None:
        conversation_id = obj.get("conversation_id")
        if isinstance(conversation_id, str):
            self._conversation_id = conversation_id
        kind = obj.get("type")
        if kind == "resume_conversation_token":
            token = obj.get("token")
            if isinstance(token, str) and token:
                self._resume_token = token
        elif kind == "moderation":
            verdict = as_dict(obj.get("moderation_response"))
            blocked = verdict.get("blocked") is True
            if (blocked or verdict.get("flagged") is True) and not self._moderated:
                self._moderated = True
                out.append(Moderated(blocked=blocked))
        elif kind == "server_ste_metadata":
            meta = as_dict(obj.get("metadata"))
            slug = meta.get("resolved_model_slug")
            if not isinstance(slug, str) or not slug:
                slug = meta.get("model_slug")
            if isinstance(slug, str) and slug:
                self._ste_slug = slug
        elif kind == "message_stream_complete":
            self._complete = True
            self._sync_metadata(out)
            self._finish(out)
            return
        self._sync_metadata(out)

    # -- the answer's text, fast --------------------------------------------

    def _answer_text(self, root: object) -> tuple[list[Any], _Msg] | None:
        """After a full observation: the answer's text part, if the next appends may skip it.

        Only when this observation went through ``_answer`` for a message still
        in progress, which streams plain text (``content_type`` text, one part)
        and had everything of it emitted.
        """
        state = self._streaming
        if state is None or self._finished or self._answer_finish is not None:
            return None
        parts = _text_parts(root)
        if parts is None or len(parts) != 1 or not isinstance(parts[0], str):
            return None
        if state.emitted != len(parts[0]):
            return None
        return parts, state

    def _text_appended(self, out: list[Event]) -> bool:
        """The record only appended text to the streaming answer: emit it; else False.

        Equivalent to the full ``_observe``: nothing but that text part changed,
        so status, metadata, citations and ids are as when last observed.
        """
        fast, appended, at = self._fast, self._delta.appended, self._delta.appended_at
        if fast is None or appended is None or at is None:
            return False
        parts, state = fast
        if at[0] is not parts or at[1] != 0 or len(parts) != 1:
            return False  # not the answer's (only) text part
        text, piece = parts[0], appended[2]
        if not isinstance(text, str) or len(text) != state.emitted + len(piece):
            return False
        new = self._marks.feed(piece)
        if new:
            out.append(TextDelta(new))
        state.emitted = len(text)
        return True

    # -- message state -> events ------------------------------------------

    def _observe(self, root: object, out: list[Event]) -> None:
        if not isinstance(root, dict):
            return
        conversation_id = root.get("conversation_id")
        if isinstance(conversation_id, str):
            self._conversation_id = conversation_id
        error = root.get("error")
        code = root.get("error_code")
        if (error or code) and not self._failed:
            self._failed = True
            out.append(_failure(error, code))
        message = root.get("message")
        if isinstance(message, dict):
            self._message(message, out)
        self._sync_metadata(out)

    def _message(self, message: dict[str, Any], out: list[Event]) -> None:
        role = as_dict(message.get("author")).get("role")
        if role != "assistant" and role != "tool":
            return  # user / system echoes
        mid = message.get("id")
        key = mid if isinstance(mid, str) else ""
        state = self._msgs.get(key)
        status = message.get("status")
        if state is None:
            finished = status == "finished_successfully"
            state = self._msgs[key] = _Msg(finished, finished and not self._turn_started)
            self._turn_started = self._turn_started or not finished
            self._code.started(key, out)  # the next message started: earlier code is complete
        if self._finished:
            return
        content = as_dict(message.get("content"))
        ctype = content.get("content_type")
        metadata = as_dict(message.get("metadata"))
        if not state.history:
            self._tool_events(key, role, message, content, ctype, metadata, status, out)
        if state.echo:
            return
        if role == "tool":
            if ctype == "text" and self._answer_id is None:
                self._reasoning(state, _string_parts(content), out)
            return
        slug = metadata.get("model_slug")
        if isinstance(slug, str) and slug:
            self._msg_slug = slug
        if ctype == "thoughts":
            self._reasoning(state, _thoughts_text(content), out)
        elif ctype in _ANSWER_TYPES:
            recipient = message.get("recipient", "all")
            channel = message.get("channel")
            if (
                (recipient is None or recipient == "all")
                and (channel is None or channel == "final")
                and not metadata.get("is_visually_hidden_from_conversation")
                and not metadata.get("is_thinking_preamble_message")
            ):
                self._answer(key, state, message, content, metadata, status, out)
        elif ctype == "system_error" and status in FINISHED and not self._failed:
            self._failed = True
            text = content.get("text")
            name = content.get("name")
            out.append(
                StreamFailed(
                    message=text if isinstance(text, str) and text else "upstream system error",
                    code=name if isinstance(name, str) else None,
                )
            )

    def _answer(
        self,
        key: str,
        state: _Msg,
        message: dict[str, Any],
        content: dict[str, Any],
        metadata: dict[str, Any],
        status: object,
        out: list[Event],
    ) -> None:
        if key != self._answer_id:
            self._release_text(out)
            self._answer_id = key
            self._answer_finish = None
            self._sync_metadata(out)
        text = _string_parts(content)
        if len(text) != state.emitted:
            if len(text) > state.emitted:
                new = self._marks.feed(text[state.emitted :])
                if new:
                    out.append(TextDelta(new))
            state.emitted = len(text)
        self._citations.observe(metadata, out)
        if status not in FINISHED:
            self._streaming = state  # this observation read the answer, still in progress
        else:
            self._release_text(out)
            kind = as_dict(metadata.get("finish_details")).get("type")
            finish = _FINISH_TYPES.get(kind, "stop") if isinstance(kind, str) else "stop"
            if message.get("end_turn") is True or finish != "stop":
                self._answer_finish = finish
                return
        self._answer_finish = None

    def _tool_events(
        self,
        key: str,
        role: object,
        message: dict[str, Any],
        content: dict[str, Any],
        ctype: object,
        metadata: dict[str, Any],
        status: object,
        out: list[Event],
    ) -> None:
        """CodeRun, ExecutionOutput and ImageGenerated from one message state."""
        if ctype == "code":
            self._code.observe(key, role, message, content, status, out)
            if role == "assistant":
                self._images.asked(message, content)
        elif ctype == "execution_output":
            self._outputs.observe(key, role, content, status, out)
        elif ctype == "multimodal_text":
            self._images.observe(key, role, content, metadata, status, out)

    def _release_text(self, out: list[Event]) -> None:
        if self._marks.holding:
            rest = self._marks.flush()
            if rest:
                out.append(TextDelta(rest))

    def _reasoning(self, state: _Msg, text: str, out: list[Event]) -> None:
        if len(text) > state.emitted:
            new = text[state.emitted :]
            if not state.reasoning:
                state.reasoning = True
                if self._any_reasoning:
                    new = _REASONING_SEP + new
                self._any_reasoning = True
            out.append(ReasoningDelta(new))
        state.emitted = len(text)

    def _sync_metadata(self, out: list[Event]) -> None:
        meta = self._meta
        slug = self._ste_slug or self._msg_slug
        if (
            self._conversation_id != meta.conversation_id
            or self._answer_id != meta.message_id
            or slug != meta.model_slug
        ):
            self._meta = Metadata(self._conversation_id, self._answer_id, slug)
            out.append(self._meta)

    def _finish(self, out: list[Event]) -> None:
        """End of the stream (end marker or close): flush what waits for it, then Finished."""
        self._fast = None
        if not self._finished:
            self._code.flush(out)
            self._release_text(out)
            self._images.flush(out)
        if self._answer_finish is not None and not self._finished:
            self._finished = True
            out.append(Finished(self._answer_finish))


def _is_echo(root: object) -> bool:
    """A v1 root whose message is a user or system turn echoed back."""
    if not isinstance(root, dict) or root.get("error") or root.get("error_code"):
        return False
    message = root.get("message")
    if not isinstance(message, dict):
        return False
    role = as_dict(message.get("author")).get("role")
    return isinstance(role, str) and role in ("user", "system")


_DELTA_HEAD = b"event: delta\ndata: {"
_HEAD_LEN = len(_DELTA_HEAD)


def _whole_records(chunk: bytes) -> list[Any] | None:
    """The JSON objects of ``chunk`` if it is whole ``event: delta`` records only, else None.

    Each record ``event: delta``, one ``data: {...}`` line and the blank
    line that ends the event, with no other line end: what the SSE decoder
    would make of the chunk is then exactly these records, so the caller may
    skip the decoder (which must be between events). Anything else, or
    bytes that are not valid UTF-8 JSON, gives None: the decoder takes the
    whole chunk.
    """
    # (bytes.find: ``in`` on bytes first tries its operand as an int and
    # formats a TypeError it then drops.)
    if chunk.find(b"\r") >= 0:
        return None
    if chunk.count(b"\n") == 3 and chunk.endswith(b"}\n\n") and chunk.startswith(_DELTA_HEAD):
        # One record: three line ends, the head's and the two ending it, so the data
        # line holds none and its JSON is what lies between.
        try:
            return [orjson.loads(chunk[_HEAD_LEN - 1 : -2])]
        except orjson.JSONDecodeError:
            return None
    pieces = chunk.split(b"\n\n")
    if pieces.pop():
        return None
    data = []
    for piece in pieces:  # every piece checked before any is parsed
        if not piece.startswith(_DELTA_HEAD) or piece.count(b"\n") != 1:
            return None
        data.append(piece[_HEAD_LEN - 1 :])
    try:
        return [orjson.loads(item) for item in data]
    except orjson.JSONDecodeError:
        return None


def _loads(data: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedEvent(f"SSE data is not JSON: {data[:80]!r}") from exc


def _failure(error: object, code: object) -> StreamFailed:
    code_text = code if isinstance(code, str) and code else None
    if isinstance(error, str) and error:
        return StreamFailed(error, code_text)
    if isinstance(error, dict):
        message = error.get("message")
        inner = error.get("code")
        if code_text is None and isinstance(inner, str) and inner:
            code_text = inner
        if isinstance(message, str) and message:
            return StreamFailed(message, code_text)
    if code_text is not None:
        return StreamFailed(f"upstream error: {code_text}", code_text)
    return StreamFailed("upstream error", None)


def decode_stream(body: bytes) -> list[Event]:
    """Decode a whole response body at once (convenience for tests and tools)."""
    decoder = ConversationDecoder()
    return decoder.feed(body) + decoder.close()
