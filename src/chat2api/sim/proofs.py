"""Server-side proof-of-work verification (spec 3.3 and 3.4).

Written from the spec alone, on purpose apart from the client's solver: the
simulator is the independent check of that solver. A proof is
`"gAAAAAB" + base64(config) [+ "~S"]`; it passes when the first
`len(difficulty)` lowercase hex digits of `HASH(seed + base64(config))` compare
`<=` to the difficulty as strings.
"""

from __future__ import annotations

import array
import base64
import binascii
import enum
import hashlib
import sys

import orjson

PROOF_PREFIX = "gAAAAAB"
REQUIREMENTS_PREFIX = "gAAAAAC"
GIVE_UP_MARKER = "wQ8Lk5FbGpA2NcR9dShT6gYjU7VxZ4D"
E3_SUFFIX = "~S"


class Verdict(enum.Enum):
    """Outcome of checking one proof token."""

    OK = "ok"
    MISSING = "missing"
    MALFORMED = "malformed"
    GIVEN_UP = "given_up"
    WRONG = "wrong"
    REUSED = "reused"


def sha3_hex(text: str) -> str:
    """SHA3-512 of the UTF-8 text, lowercase hex (the E2 hash)."""
    return hashlib.sha3_512(text.encode("utf-8")).hexdigest()


def fnv_hex(text: str) -> str:
    """32-bit FNV-1a over UTF-16 code units plus the SDK's finaliser (the E3 hash)."""
    h = 2166136261
    units = array.array("H", text.encode("utf-16-le"))
    if sys.byteorder == "big":
        units.byteswap()
    for unit in units:
        h = ((h ^ unit) * 16777619) & 0xFFFFFFFF
    h ^= h >> 16
    h = (h * 2246822507) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 3266489909) & 0xFFFFFFFF
    h ^= h >> 16
    return f"{h:08x}"


def hash_hex(algorithm: str, text: str) -> str:
    """Dispatch on the configured algorithm name ("sha3" or "fnv")."""
    if algorithm == "fnv":
        return fnv_hex(text)
    if algorithm == "sha3":
        return sha3_hex(text)
    raise ValueError(f"unknown proof-of-work hash: {algorithm}")


def proof_payload(token: str) -> str | None:
    """The hashed part of a proof token (prefix and optional `~S` removed), or None."""
    if not token.startswith(PROOF_PREFIX):
        return None
    rest = token[len(PROOF_PREFIX) :]
    if rest.endswith(E3_SUFFIX):
        rest = rest[: -len(E3_SUFFIX)]
    return rest or None


def verify_proof(token: str | None, seed: str, difficulty: str, algorithm: str = "sha3") -> Verdict:
    """Check a proof token against the seed and difficulty issued with its requirements token."""
    if not token:
        return Verdict.MISSING
    rest = proof_payload(token)
    if rest is None:
        return Verdict.MALFORMED
    if rest.startswith(GIVE_UP_MARKER):
        return Verdict.GIVEN_UP
    digest = hash_hex(algorithm, seed + rest)
    if digest[: len(difficulty)] <= difficulty:
        return Verdict.OK
    return Verdict.WRONG


def decode_config(token: str) -> list[object] | None:
    """Decode the config array inside a proof or requirements token, or None if unreadable."""
    for prefix in (PROOF_PREFIX, REQUIREMENTS_PREFIX):
        if token.startswith(prefix):
            rest = token[len(prefix) :]
            break
    else:
        return None
    if rest.endswith(E3_SUFFIX):
        rest = rest[: -len(E3_SUFFIX)]
    try:
        value = orjson.loads(base64.b64decode(rest, validate=True))
    except (binascii.Error, ValueError):
        return None
    return value if isinstance(value, list) else None
