"""Knobs of the simulator.

One frozen dataclass; the running app keeps the current value in its state and
`POST /_sim/config` swaps in a patched copy (`SimConfig.patched`), so a handler
that read the config at its start sees one consistent set of knobs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

ERAS = ("e2", "e3", "e3-strict")
DEFAULT_MODELS: tuple[str, ...] = (
    "auto",
    "gpt-5-3",
    "gpt-5-3-mini",
    "gpt-5-4-thinking",
    "gpt-4o",
    "gpt-4o-mini",
    "o3",
    "o4-mini",
)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Every knob of the simulator; see docs/simulator-reference.md for the meaning of each."""

    # which send paths are served: "e2" (E3 endpoints 404), "e3" (both paths),
    # "e3-strict" (the E2 conversation POST answers 403 unusual activity)
    era: str = "e3"
    # sentinel / proof of work
    pow_required: bool = True
    pow_difficulty: str = "0fffff"
    pow_hash: str = "sha3"
    reject_reused_proof: bool = True
    reject_given_up_proof: bool = True
    require_sentinel: bool = True
    require_p: bool = False
    turnstile_required: bool = False
    arkose_required: bool = False
    requirements_expire_after: int = 540
    # E3 sentinel (prepare/finalize) and conduit
    so_required: bool = False
    force_login: bool = False
    issue_so_token: bool = False
    conduit_expire_after: int = 300
    # E3 calls must carry the web client's headers (OAI-Device-Id, OAI-Language,
    # OAI-Session-Id, OAI-Client-Version = build_id), else 403 unusual activity
    require_client_headers: bool = False
    # E3 resume: events before a `cut_resumable`/`truncated_resumable` stream breaks,
    # how many resumed streams of that turn break again, how long a finished turn
    # can still be resumed (seconds)
    cut_after_events: int = 8
    resume_cuts: int = 0
    resume_window: float = 60.0
    # replies and streaming
    reply_words: int = 30
    chunk_words: int = 1
    chunk_delay: float = 0.0
    slow_seconds: float = 2.0
    rate_limit_clears_in: int = 252
    # OAuth refresh (POST /oauth/token)
    refresh_delay: float = 0.0
    # identity of the fake deployment
    build_id: str = "prod-5f3c0e9d2b7a41c68e0d9a1f4b2c7e3d6a8f0b1c"
    models: tuple[str, ...] = field(default=DEFAULT_MODELS)
    auto_model: str = "gpt-5-3"
    default_model_slug: str = "auto"
    # introspection
    max_recorded_requests: int = 2000
    # conversation history: kept conversations (least recently updated dropped first)
    max_conversations: int = 10_000
    # files: the N-th GET /files/{id} of an uploaded my_files file says retrieval success
    retrieval_polls: int = 1
    # picture_v2: the N-th GET /conversation/{id} shows the image finished
    image_async_polls: int = 2
    # #sim:cite: how many sources the answer cites (the first is CITE_URL; the
    # others are supporting websites of its content reference)
    cite_sources: int = 1
    # largest file_size POST /backend-api/files accepts
    max_upload_bytes: int = 64 * 1024 * 1024
    # kept files, uploaded and generated (the oldest dropped first)
    max_files: int = 10_000

    def patched(self, changes: dict[str, Any]) -> SimConfig:
        """Return a copy with `changes` applied; unknown names or wrong types raise ValueError."""
        known = {f.name: f for f in dataclasses.fields(self)}
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown SimConfig field: {name}")
            current = getattr(self, name)
            clean[name] = _coerce(name, current, value)
        new = dataclasses.replace(self, **clean)
        new.validate()
        return new

    def validate(self) -> None:
        """Raise ValueError when a knob holds an impossible value."""
        if self.era not in ERAS:
            raise ValueError("era must be 'e2', 'e3' or 'e3-strict'")
        if self.era != "e2" and len(self.pow_difficulty) > 8:
            raise ValueError("E3 proofs are FNV: pow_difficulty has at most 8 hex digits")
        if min(self.cut_after_events, self.resume_cuts, self.conduit_expire_after) < 0:
            raise ValueError("cut_after_events, resume_cuts, conduit_expire_after must be >= 0")
        if self.resume_window < 0:
            raise ValueError("resume_window must be >= 0")
        if self.pow_hash not in ("sha3", "fnv"):
            raise ValueError("pow_hash must be 'sha3' or 'fnv'")
        if not self.pow_difficulty or any(c not in "0123456789abcdef" for c in self.pow_difficulty):
            raise ValueError("pow_difficulty must be lowercase hex")
        if self.pow_hash == "fnv" and len(self.pow_difficulty) > 8:
            raise ValueError("an fnv difficulty has at most 8 hex digits")
        if self.reply_words < 0 or self.chunk_words < 1:
            raise ValueError("reply_words must be >= 0 and chunk_words >= 1")
        if self.max_conversations < 0:
            raise ValueError("max_conversations must be >= 0")
        if min(self.retrieval_polls, self.image_async_polls, self.max_upload_bytes) < 0:
            raise ValueError("retrieval_polls, image_async_polls, max_upload_bytes must be >= 0")
        if self.max_files < 1:
            raise ValueError("max_files must be >= 1")
        if self.cite_sources < 1:
            raise ValueError("cite_sources must be >= 1")
        if self.chunk_delay < 0 or self.slow_seconds < 0 or self.refresh_delay < 0:
            raise ValueError("delays must be >= 0")

    def as_json(self) -> dict[str, Any]:
        """The knobs as a JSON-ready mapping."""
        out = dataclasses.asdict(self)
        out["models"] = list(self.models)
        return out


def _coerce(name: str, current: object, value: object) -> object:
    """Check a patched value against the type of the current one (JSON has no tuples)."""
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be a boolean")
        return value
    if isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer")
        return value
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number")
        return float(value)
    if isinstance(current, str):
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
        return value
    if isinstance(current, tuple):
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{name} must be a list of strings")
        return tuple(value)
    raise ValueError(f"{name} cannot be patched")  # pragma: no cover - every field is covered
