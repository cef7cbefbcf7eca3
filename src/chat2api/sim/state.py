"""Mutable state of one running simulator: config, counters, records, sentinel bindings, scripts.

It lives on `app.state.sim`; handlers run on one event loop, so plain
containers suffice. Tests in another thread only read counters and copies.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from chat2api.sim.config import SimConfig
from chat2api.sim.files import (
    FileRecord,
    ImageTask,
    SandboxOutput,
    attachments_of,
    image_parts_of,
)
from chat2api.sim.history import ConversationStore
from chat2api.sim.replies import content_text
from chat2api.sim.turns import TurnBook

FAULTS = frozenset(
    {
        "rate_limited",
        "expired",
        "unusual_activity",
        "cloudflare",
        "turnstile",
        "server_error",
        "slow",
        "truncated",
        "cut",
        "malformed",
        "stream_error",
        "reset",
        "max_tokens",
        "moderation",
        "conduit_rejected",
        "cut_resumable",
        "truncated_resumable",
    }
)
REFRESH_FAULTS = frozenset({"refresh_error"})
# E3 faults that only one step takes, each from its own queue (step names: e3.py).
STEP_FAULTS = {
    "prepare_404": "prepare",
    "so_required": "prepare",
    "force_login": "prepare",
    "finalize_403": "finalize",
    "conduit_prepare_404": "conduit",
    "resume_404": "resume",
}
# `<step>:<fault>` (e.g. `finalize:server_error`): one of these answers at an E3 step.
E3_STEPS = ("prepare", "finalize", "conduit", "resume", "stop")
EDGE_FAULTS = frozenset(
    {"server_error", "rate_limited", "expired", "unusual_activity", "cloudflare", "reset", "slow"}
)


def step_of(fault: str) -> str | None:
    """The E3 step a fault is queued for, or None when it is not a step fault."""
    if fault in STEP_FAULTS:
        return STEP_FAULTS[fault]
    step, sep, kind = fault.partition(":")
    return step if sep and step in E3_STEPS and kind in EDGE_FAULTS else None


MAX_BINDINGS = 200_000
FINISH_TYPES = ("stop", "max_tokens")
Finish = Literal["stop", "max_tokens"]


@dataclass(frozen=True, slots=True)
class Script:
    """One scripted answer: the next conversation that streams an answer says exactly this.

    `chunks` (when given) are the exact stream steps of the answer text; their
    concatenation is `reply`. `reasoning`, when not None, is streamed first as a
    thoughts message. `model_slug` overrides the served slug; `finish` is the
    final `finish_details.type`.
    """

    reply: str
    reasoning: str | None = None
    chunks: tuple[str, ...] | None = None
    model_slug: str | None = None
    finish: Finish = "stop"

    def validate(self) -> None:
        """Raise ValueError when the script cannot be streamed as asked."""
        texts: list[object] = [self.reply, self.reasoning, self.model_slug, *(self.chunks or ())]
        for text in texts:
            if text is not None and not isinstance(text, str):
                raise ValueError("reply, reasoning, chunks and model_slug must be strings")
        for text in texts:
            if isinstance(text, str):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise ValueError("script text must not hold lone surrogates") from exc
        if self.chunks is not None and "".join(self.chunks) != self.reply:
            raise ValueError("the concatenation of chunks must equal reply")
        if self.model_slug == "":
            raise ValueError("model_slug must not be empty")
        if self.finish not in FINISH_TYPES:
            raise ValueError("finish must be 'stop' or 'max_tokens'")

    def as_json(self) -> dict[str, Any]:
        """The script as a JSON-ready mapping (as `GET /_sim/script` lists it)."""
        return {
            "reply": self.reply,
            "reasoning": self.reasoning,
            "chunks": None if self.chunks is None else list(self.chunks),
            "model_slug": self.model_slug,
            "finish": self.finish,
        }


@dataclass(frozen=True, slots=True)
class Requirements:
    """What a requirements token was issued with (spec 3.4 step 3: bind seed+difficulty)."""

    seed: str
    difficulty: str
    algorithm: str
    pow_required: bool
    turnstile_required: bool
    arkose_required: bool
    persona: str
    expires_at: float
    # E3: the owner the token was finalized for, the era that issued it, the so_token
    # given, and the proof finalize accepted (the send may carry it without a re-hash).
    owner: str | None = None
    era: str = "e2"
    so_token: str | None = None
    proof: str | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """What an E3 prepare token was issued with; finalize spends it (single use)."""

    owner: str
    seed: str
    difficulty: str
    pow_required: bool
    turnstile_required: bool
    so_required: bool
    force_login: bool
    persona: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class Conduit:
    """An issued conduit token: usable once, by its owner, before it expires."""

    owner: str
    expires_at: float


@dataclass
class Stats:
    """Counters exposed at GET /_sim/stats."""

    home: int = 0
    requirements: int = 0
    conversations: int = 0
    streams_started: int = 0
    streams_completed: int = 0
    streams_cancelled: int = 0
    streams_truncated: int = 0
    rejected_sentinel: int = 0
    faults_injected: int = 0
    scripted: int = 0
    models: int = 0
    refreshes: int = 0
    conversations_kept: int = 0
    follow_ups: int = 0
    conversation_not_found: int = 0
    conversation_gets: int = 0
    conversation_lists: int = 0
    files_created: int = 0
    blob_puts: int = 0
    blob_gets: int = 0
    images_generated: int = 0
    image_polls: int = 0
    prepares: int = 0
    finalizes: int = 0
    conduits: int = 0
    e3_conversations: int = 0
    resumes: int = 0
    stops: int = 0
    turns_stopped: int = 0
    stream_status: int = 0


@dataclass
class SimState:
    """The simulator's memory; one per app."""

    config: SimConfig
    stats: Stats = field(default_factory=Stats)
    requests: collections.deque[dict[str, Any]] = field(default_factory=collections.deque)
    issued: collections.OrderedDict[str, Requirements] = field(
        default_factory=collections.OrderedDict
    )
    used_proofs: collections.OrderedDict[str, None] = field(default_factory=collections.OrderedDict)
    faults: collections.deque[str] = field(default_factory=collections.deque)
    refresh_faults: collections.deque[str] = field(default_factory=collections.deque)
    step_faults: dict[str, collections.deque[str]] = field(default_factory=dict)
    prepared: collections.OrderedDict[str, Prepared] = field(
        default_factory=collections.OrderedDict
    )
    conduits: collections.OrderedDict[str, Conduit] = field(default_factory=collections.OrderedDict)
    turns: TurnBook = field(default_factory=TurnBook)
    used_refresh_tokens: collections.OrderedDict[str, None] = field(
        default_factory=collections.OrderedDict
    )
    scripts: collections.deque[Script] = field(default_factory=collections.deque)
    last_conversation: object = None
    last_history: list[tuple[str, str]] = field(default_factory=list)
    conversations: ConversationStore = field(default_factory=ConversationStore)
    # Files (uploaded and generated), picture_v2 tasks, code-interpreter outputs,
    # and what accepted conversation requests carried as attachments.
    files: dict[str, FileRecord] = field(default_factory=dict)
    image_tasks: dict[str, ImageTask] = field(default_factory=dict)
    sandbox_outputs: dict[tuple[str, str, str], SandboxOutput] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)
    # Requests per path to the web app's logout/session and the stub endpoints (webapp.py).
    hits: dict[str, int] = field(default_factory=dict)

    def record(self, path: str, method: str, headers: dict[str, str], body: object) -> None:
        """Keep one request for GET /_sim/requests (oldest dropped past the configured cap).

        The body of a conversation request is also kept apart for `last_prompt`,
        whatever the cap.
        """
        if path.endswith("/conversation"):
            self.last_conversation = body
            self.last_history = []
        self.requests.append(
            {
                "path": path,
                "method": method,
                "headers": headers,
                "body": body,
                "account_id": headers.get("chatgpt-account-id"),
                "time": time.time(),
            }
        )
        while len(self.requests) > self.config.max_recorded_requests:
            self.requests.popleft()

    def bind(self, token: str, requirements: Requirements) -> None:
        """Remember what `token` was issued with."""
        self.issued[token] = requirements
        while len(self.issued) > MAX_BINDINGS:
            self.issued.popitem(last=False)

    def lookup(self, token: str | None) -> Requirements | None:
        """The unexpired binding of a requirements token, or None."""
        if not token:
            return None
        found = self.issued.get(token)
        if found is None or found.expires_at < time.time():
            return None
        return found

    def spend(self, token: str | None) -> Requirements | None:
        """Look a requirements token up and retire it (E3 tokens are single use)."""
        found = self.lookup(token)
        if found is not None and token is not None:
            del self.issued[token]
        return found

    def prepare(self, token: str, prepared: Prepared) -> None:
        """Remember what an E3 prepare token was issued with."""
        self.prepared[token] = prepared
        while len(self.prepared) > MAX_BINDINGS:
            self.prepared.popitem(last=False)

    def take_prepared(self, token: object) -> Prepared | None:
        """Spend a prepare token: its binding if it was live, None otherwise (single use)."""
        if not isinstance(token, str):
            return None
        found = self.prepared.pop(token, None)
        if found is None or found.expires_at < time.time():
            return None
        return found

    def issue_conduit(self, token: str, conduit: Conduit) -> None:
        """Remember a conduit token."""
        self.conduits[token] = conduit
        while len(self.conduits) > MAX_BINDINGS:
            self.conduits.popitem(last=False)

    def conduit_of(self, token: str | None, owner: str) -> Conduit | None:
        """The live conduit token `token` of `owner`, or None (not spent by this call)."""
        found = self.conduits.get(token) if token else None
        if found is None or found.owner != owner or found.expires_at < time.time():
            return None
        return found

    def spend_proof(self, proof: str) -> bool:
        """Mark a proof as used; False when it had been used before."""
        if proof in self.used_proofs:
            return False
        self.used_proofs[proof] = None
        while len(self.used_proofs) > MAX_BINDINGS:
            self.used_proofs.popitem(last=False)
        return True

    def spend_refresh_token(self, token: str) -> bool:
        """Retire a rotated refresh token; False when it had been retired before."""
        if token in self.used_refresh_tokens:
            return False
        self.used_refresh_tokens[token] = None
        while len(self.used_refresh_tokens) > MAX_BINDINGS:
            self.used_refresh_tokens.popitem(last=False)
        return True

    def queue_faults(self, fault: str, count: int) -> None:
        """Make the next `count` conversations (or, for `refresh_error`, refreshes) fail."""
        if fault in REFRESH_FAULTS:
            self.refresh_faults.extend([fault] * count)
            return
        step = step_of(fault)
        if step is not None:
            self.step_faults.setdefault(step, collections.deque()).extend([fault] * count)
            return
        if fault not in FAULTS:
            raise ValueError(f"unknown fault: {fault}")
        self.faults.extend([fault] * count)

    def next_fault(self) -> str | None:
        """Take the next queued conversation fault, if any."""
        return self.faults.popleft() if self.faults else None

    def next_step_fault(self, step: str) -> str | None:
        """Take the next queued fault of one E3 step (`prepare`, `finalize`, …), if any."""
        queue = self.step_faults.get(step)
        return queue.popleft() if queue else None

    def queued_faults(self) -> list[str]:
        """Every queued fault: conversation, refresh, then E3 step queues."""
        steps = [f for q in self.step_faults.values() for f in q]
        return [*self.faults, *self.refresh_faults, *steps]

    def next_refresh_fault(self) -> str | None:
        """Take the next queued refresh fault, if any."""
        return self.refresh_faults.popleft() if self.refresh_faults else None

    def script(
        self,
        reply: str,
        *,
        reasoning: str | None = None,
        chunks: list[str] | None = None,
        model_slug: str | None = None,
        finish: Finish = "stop",
    ) -> Script:
        """Queue one scripted answer (FIFO); ValueError when it is inconsistent.

        It is taken by the next conversation, of any account, that gets as far
        as streaming an answer; a request that ends with an error (a fault, auth,
        sentinel, body check) or the `moderation` fault leaves it queued.
        """
        item = Script(
            reply=reply,
            reasoning=reasoning,
            chunks=None if chunks is None else tuple(chunks),
            model_slug=model_slug,
            finish=finish,
        )
        item.validate()
        self.scripts.append(item)
        return item

    def next_script(self) -> Script | None:
        """Take the next queued script, if any."""
        return self.scripts.popleft() if self.scripts else None

    def last_prompt(self) -> list[tuple[str, str]]:
        """`(role, text)` of everything the model saw on the last conversation request.

        A new (or temporary) conversation: the request's messages, as
        `last_request_messages`. A follow-up the simulator accepted: the kept
        branch from the root down to `parent_message_id` (system, user and
        assistant answers; no thoughts or recaps), then the request's messages.
        A follow-up refused before its conversation was found reads as its
        request's messages only.
        """
        return [*self.last_history, *self.last_request_messages()]

    def last_request_messages(self) -> list[tuple[str, str]]:
        """`(role, text)` of each message the last conversation request's body carried.

        Text parts are joined with newlines. Empty when no conversation request
        came in since the last reset (or its body had no message list). A message
        without a role reads as `user`.
        """
        body = self.last_conversation
        messages = body.get("messages") if isinstance(body, dict) else None
        out: list[tuple[str, str]] = []
        for m in messages if isinstance(messages, list) else []:
            if not isinstance(m, dict):
                continue
            author = m.get("author")
            role = author.get("role") if isinstance(author, dict) else None
            out.append((role if isinstance(role, str) else "user", content_text(m.get("content"))))
        return out

    def add_file(self, record: FileRecord) -> None:
        """Keep a file; past `max_files` the oldest ones (and their tasks/outputs) are dropped."""
        self.files[record.file_id] = record
        while len(self.files) > max(self.config.max_files, 0):
            old = next(iter(self.files))
            del self.files[old]
            self.image_tasks.pop(old, None)
            for key in [k for k, v in self.sandbox_outputs.items() if v.file_id == old]:
                del self.sandbox_outputs[key]

    def _last_messages(self) -> list[Any]:
        body = self.last_conversation
        messages = body.get("messages") if isinstance(body, dict) else None
        return list(messages) if isinstance(messages, list) else []

    def last_attachments(self) -> list[Any]:
        """`metadata.attachments` entries of every message of the last conversation request.

        As sent (both `mimeType` and `mime_type` spellings kept), in body order;
        recorded before any check, like `last_prompt`.
        """
        return [a for m in self._last_messages() for a in attachments_of(m)]

    def last_image_parts(self) -> list[dict[str, Any]]:
        """The `image_asset_pointer` parts of the last conversation request's messages, as sent."""
        return [p for m in self._last_messages() for p in image_parts_of(m)]

    def attachments_for(self, conversation_id: str) -> list[dict[str, Any]]:
        """What accepted requests of one conversation carried: one entry per message with files.

        Each entry: `{"conversation_id", "message_id", "attachments": [...],
        "image_parts": [...]}` (lists as sent).
        """
        return [r for r in self.received if r["conversation_id"] == conversation_id]

    def reset(self) -> None:
        """Forget counters, records, bindings, used tokens, faults, scripts, conversations, files.

        The config is kept.
        """
        self.stats = Stats()
        self.requests.clear()
        self.issued.clear()
        self.used_proofs.clear()
        self.faults.clear()
        self.refresh_faults.clear()
        self.step_faults.clear()
        self.prepared.clear()
        self.conduits.clear()
        self.turns.clear()
        self.used_refresh_tokens.clear()
        self.scripts.clear()
        self.last_conversation = None
        self.last_history = []
        self.conversations.clear()
        self.files.clear()
        self.image_tasks.clear()
        self.sandbox_outputs.clear()
        self.received.clear()
        self.hits.clear()
