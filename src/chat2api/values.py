"""Value types shared across the layers: what one layer hands to another.

Any module of the client may import these; this module imports none of the
client (docs/design.md, "Layers"; checked by ``tests/unit/test_layers.py``).
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["IMAGE_TYPES", "Attachment", "Credentials", "PromptTurn", "fingerprint"]

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


class PromptTurn(NamedTuple):
    """One turn of the prompt as the upstream model reads it."""

    role: str  # the upstream role: system, user or assistant
    text: str
    name: str | None = None


def fingerprint(secret: str) -> str:
    """A short, stable, non-reversible name for a secret, safe to log."""
    return hashlib.sha256(secret.encode()).hexdigest()[:10]


@functools.lru_cache(maxsize=4096)
def _token_device_id(access_token: str) -> str:
    # uuid5 hashes with SHA-1 and builds a UUID object: worth caching per token.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "chat2api:" + access_token))


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who the request runs as: an access token (and Team workspace) or nobody."""

    access_token: str | None = None
    account_id: str | None = None
    # The login-free identity: one per Credentials object (so the sentinel and
    # the conversation of one request agree), or a kept one to continue a
    # login-free conversation.
    device: str = field(default_factory=lambda: str(uuid.uuid4()))
    # A pool account's id: its device id and proxy stay the same for the
    # account's life, across refreshed AccessTokens.
    key: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.access_token is None

    @property
    def device_id(self) -> str:
        """The device id: stable per account (or token); per request when login-free."""
        if self.access_token is None:
            return self.device
        return _token_device_id(self.key or self.access_token)

    @property
    def sticky(self) -> str | None:
        """What picks this account's proxy and proxy session: None when login-free."""
        if self.access_token is None:
            return None
        return self.key or self.access_token

    def __repr__(self) -> str:  # never print the token itself
        who = "anonymous" if self.access_token is None else fingerprint(self.access_token)
        return f"Credentials({who}, account_id={self.account_id!r})"


@dataclass
class Attachment:
    """One checked attachment; ``mime_type`` is sniffed, never the client's label."""

    data: bytes
    mime_type: str
    name: str
    width: int | None
    height: int | None
    param: str

    @property
    def is_image(self) -> bool:
        """Whether this is one of the accepted image types."""
        return self.mime_type in IMAGE_TYPES
