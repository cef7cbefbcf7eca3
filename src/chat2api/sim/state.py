"""Mutable state of one running simulator: config, counters, records, sentinel bindings.

It lives on `app.state.sim`; handlers run on one event loop, so plain
containers suffice. Tests in another thread only read counters and copies.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any

from chat2api.sim.config import SimConfig

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
    }
)
REFRESH_FAULTS = frozenset({"refresh_error"})
MAX_BINDINGS = 200_000


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
    models: int = 0
    refreshes: int = 0


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
    used_refresh_tokens: collections.OrderedDict[str, None] = field(
        default_factory=collections.OrderedDict
    )

    def record(self, path: str, method: str, headers: dict[str, str], body: object) -> None:
        """Keep one request for GET /_sim/requests (oldest dropped past the configured cap)."""
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
        if fault not in FAULTS:
            raise ValueError(f"unknown fault: {fault}")
        self.faults.extend([fault] * count)

    def next_fault(self) -> str | None:
        """Take the next queued conversation fault, if any."""
        return self.faults.popleft() if self.faults else None

    def next_refresh_fault(self) -> str | None:
        """Take the next queued refresh fault, if any."""
        return self.refresh_faults.popleft() if self.refresh_faults else None

    def reset(self) -> None:
        """Forget counters, records, bindings, used tokens and queued faults (config is kept)."""
        self.stats = Stats()
        self.requests.clear()
        self.issued.clear()
        self.used_proofs.clear()
        self.faults.clear()
        self.refresh_faults.clear()
        self.used_refresh_tokens.clear()
