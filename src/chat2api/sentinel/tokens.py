"""Sentinel token encodings: the requirements token ``p`` (spec 3.2) and the
shared ``gAAAAA?`` + base64(JSON) framing used by proof tokens (spec 3.3).

Requirements token style: we use the 2025–2026 SDK's blocking path — no
search, ``config[3] = 1``, ``config[9]`` = elapsed ms — rather than the E2
proxies' "solve against a random seed with difficulty 0fffff". The server
cannot check the seeded search (it never learns the seed), so it buys
nothing; the no-search form is what current browsers send, costs no CPU on
the request path and is deterministic for tests.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Literal

from chat2api.sentinel.jsjson import js_json, js_utf8

__all__ = [
    "FNV_SUFFIX",
    "GIVE_UP_MARKER",
    "PROOF_PREFIX",
    "REQUIREMENTS_PREFIX",
    "ConfigLayout",
    "decode_token",
    "encode_config",
    "requirements_token",
]

REQUIREMENTS_PREFIX = "gAAAAAC"
PROOF_PREFIX = "gAAAAAB"
FNV_SUFFIX = "~S"
GIVE_UP_MARKER = "wQ8Lk5FbGpA2NcR9dShT6gYjU7VxZ4D"
"""Payload prefix of a proof token whose search gave up; we never send one."""


def encode_config(config: list[Any]) -> str:
    """base64(UTF-8(JSON.stringify(config))), standard alphabet with padding."""
    return base64.b64encode(js_utf8(js_json(config))).decode("ascii")


def requirements_token(config: list[Any], *, suffix: Literal["", "~S"] = "") -> str:
    """The ``p`` value for chat-requirements: ``gAAAAAC`` + base64(config).

    ``config[3]`` is set to 1 (on a copy); ``config[9]`` is kept as given
    (build the config with the elapsed ms there). ``suffix="~S"`` mimics
    2026 clients that append it; E2 clients send none.
    """
    if len(config) < 4:
        raise ValueError("config array needs at least 4 elements")
    payload = list(config)
    payload[3] = 1
    return REQUIREMENTS_PREFIX + encode_config(payload) + suffix


class ConfigLayout:
    """A config array's JSON split around its two varying elements (index 3 and 9).

    ``json = head + str(nonce) + mid + str(elapsed) + tail``: what the
    requirements token and the proof-of-work search encode, made once per
    request (:meth:`chat2api.sentinel.config.ConfigTemplate.layout` makes it
    from cached pieces; :meth:`of` from an array).
    """

    __slots__ = ("head", "mid", "tail")

    def __init__(self, head: bytes, mid: bytes, tail: bytes) -> None:
        self.head = head
        self.mid = mid
        self.tail = tail

    @classmethod
    def of(cls, config: list[Any]) -> ConfigLayout:
        """The layout of ``config`` (at least 10 elements)."""
        if len(config) < 10:
            raise ValueError("a config layout needs at least 10 elements")
        parts = [js_utf8(js_json(v)) for v in config]
        return cls(
            b"[" + b",".join(parts[:3]) + b",",
            b"," + b",".join(parts[4:9]) + b",",
            b"".join([b"," + p for p in parts[10:]]) + b"]",
        )

    def json(self, nonce: int, elapsed: int) -> bytes:
        """The JSON bytes of the array with ``nonce`` at index 3 and ``elapsed`` at 9."""
        return b"%b%d%b%d%b" % (self.head, nonce, self.mid, elapsed, self.tail)

    def requirements_token(self, elapsed_ms: int = 0, *, suffix: Literal["", "~S"] = "") -> str:
        """:func:`requirements_token` of this array with ``elapsed_ms`` at index 9."""
        payload = binascii.b2a_base64(self.json(1, elapsed_ms), newline=False)
        return REQUIREMENTS_PREFIX + payload.decode("ascii") + suffix

    def __reduce__(self) -> tuple[type[ConfigLayout], tuple[bytes, bytes, bytes]]:
        return ConfigLayout, (self.head, self.mid, self.tail)  # to a proof-of-work worker


def decode_token(token: str) -> list[Any]:
    """Decode a ``gAAAAAB``/``gAAAAAC`` token back to its config array.

    A trailing ``~S`` is ignored. Raises ``ValueError`` when the token is not
    a prefixed base64 JSON array (a give-up token is such a case).
    """
    if not token.startswith((PROOF_PREFIX, REQUIREMENTS_PREFIX)):
        raise ValueError("not a sentinel token")
    body = token[len(PROOF_PREFIX) :].removesuffix(FNV_SUFFIX)
    try:
        value = json.loads(base64.b64decode(body, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("sentinel token payload is not base64 JSON") from exc
    if not isinstance(value, list):
        raise ValueError("sentinel token payload is not an array")
    return value
