"""Turns started on the E3 send path, kept so they can be resumed, stopped and polled.

A turn's SSE records are rendered once, before the first byte goes out (see
records.py), and kept here as `events`: exactly the records of the uncut
stream, its leading `delta_encoding` included (v1). A resume `offset` is an
index into that list, i.e. the number of the turn's records the client has
consumed. A stream resumed at `offset >= 1` writes the `delta_encoding`
record first again (so the body can be read on its own; it is not a record
of the turn and does not count), then `events[offset:]`. Every stream of a
turn reads the same list, which is what makes a resumed answer equal, record
for record, to an uncut one.

Lifecycle of a turn: `streaming` while a stream writes it; `detached` when
its stream broke or its client went away (the server would still be
generating: `stream_status` says IS_STREAMING for `resume_window` seconds);
`finished` once a stream wrote its last event; `stopped` after
`stop_conversation`. Finished and detached turns can be resumed for
`resume_window` seconds after that; stopped ones cannot.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field

MAX_TURNS = 10_000


@dataclass(slots=True)
class LiveTurn:
    """One E3 turn: its records, who may resume it, and how its streams break."""

    conversation_id: str
    owner: str
    conduit_token: str
    resume_token: str
    header: bytes | None
    events: list[bytes]
    delay: float = 0.0
    # Events a stream writes before it breaks (None: never), and how it breaks.
    cut_after: int | None = None
    cut_ending: str = "abort"
    # Resumed streams of this turn that still break after `cut_after` events.
    cuts_left: int = 0
    state: str = "streaming"
    ended_at: float | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def is_streaming(self, window: float, now: float | None = None) -> bool:
        """What `stream_status` reports: running, or detached less than `window` ago."""
        if self.state == "streaming":
            return True
        now = time.time() if now is None else now
        return (
            self.state == "detached" and self.ended_at is not None and now - self.ended_at < window
        )

    def resumable(self, window: float, now: float | None = None) -> bool:
        """Whether `f/conversation/resume` may re-stream this turn."""
        if self.state == "stopped":
            return False
        if self.ended_at is None:
            return True
        now = time.time() if now is None else now
        return now - self.ended_at < window

    def stream_end(self, start: int, breaks: bool) -> int:
        """Index after the last event a stream starting at `start` writes."""
        if breaks and self.cut_after is not None:
            return min(len(self.events), start + self.cut_after)
        return len(self.events)

    def ended(self, outcome: str) -> None:
        """Record how one of this turn's streams ended (see `EventStream.on_end`)."""
        if self.state == "stopped":
            return
        if outcome == "completed":
            self.state = "finished"
            self.ended_at = time.time()
        elif self.state == "streaming":
            self.state = "detached"
            self.ended_at = time.time()

    def halt(self) -> None:
        """`stop_conversation`: the turn ends; a stream still writing it ends at once."""
        self.state = "stopped"
        self.ended_at = time.time()
        self.stop.set()


@dataclass
class TurnBook:
    """The E3 turns, by (owner, conversation id); the newest turn of a conversation wins."""

    turns: collections.OrderedDict[tuple[str, str], LiveTurn] = field(
        default_factory=collections.OrderedDict
    )

    def add(self, turn: LiveTurn, window: float) -> None:
        """Keep a turn (replacing an older one of the same conversation).

        The oldest turns go first: those that can no longer be resumed (their
        records are the bulk of the simulator's memory under load), then any
        past MAX_TURNS.
        """
        key = (turn.owner, turn.conversation_id)
        self.turns.pop(key, None)
        self.turns[key] = turn
        now = time.time()
        while self.turns:
            oldest = next(iter(self.turns.values()))
            if oldest.state == "streaming" or oldest.resumable(window, now):
                break
            self.turns.popitem(last=False)
        while len(self.turns) > MAX_TURNS:
            self.turns.popitem(last=False)

    def get(self, owner: str, conversation_id: str) -> LiveTurn | None:
        """The latest turn of `conversation_id` started by `owner`, if any."""
        return self.turns.get((owner, conversation_id))

    def running(self) -> list[LiveTurn]:
        """Turns in state `streaming` (for introspection)."""
        return [t for t in self.turns.values() if t.state == "streaming"]

    def clear(self) -> None:
        """Forget every turn (a stream still writing one is not interrupted)."""
        self.turns.clear()
