"""Recognising the kinds of token a user gives (spec 7.1), and pasted token lists."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Literal

import orjson

TokenKind = Literal["access_token", "refresh_token", "other"]

ACCESS_TOKEN_PREFIXES = ("eyJ", "fk-")
_OLD_REFRESH_LENGTH = 45


def token_kind(token: str) -> TokenKind:
    """AccessToken (a JWT, or an ``fk-`` pool key), RefreshToken, or anything else."""
    if token.startswith(ACCESS_TOKEN_PREFIXES):
        return "access_token"
    if (token.startswith("rt_") and len(token) >= 40) or (
        len(token) == _OLD_REFRESH_LENGTH and token.replace("-", "").replace("_", "").isalnum()
    ):
        return "refresh_token"
    return "other"


@dataclass(frozen=True, slots=True)
class GivenToken:
    """A token as given, split from its optional Team workspace (``token,account-id``)."""

    token: str
    workspace: str | None
    kind: TokenKind


def parse_token(value: str) -> GivenToken:
    """``token`` or ``token,account-id``, surrounding blanks removed."""
    token, _, workspace = value.strip().partition(",")
    token, workspace = token.strip(), workspace.strip()
    return GivenToken(token, workspace or None, token_kind(token))


_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_REFRESH = re.compile(r"rt_[A-Za-z0-9._-]+|[A-Za-z0-9_-]+")
_POOL_KEY = re.compile(r"fk-[A-Za-z0-9_-]+")
_WORKSPACE = re.compile(r"[A-Za-z0-9_-]{1,128}")
MAX_TOKEN_LENGTH = 16_384


def _b64_json(segment: str) -> object:
    try:
        return orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):  # orjson's JSONDecodeError is a ValueError
        return None


def token_problem(given: GivenToken) -> str | None:
    """What keeps ``given`` from being a token the pool can store (never quoting it), or None.

    An AccessToken must be a JWT (three base64url parts, a JSON header naming
    its ``alg`` and a JSON payload) or an ``fk-`` key; a RefreshToken ``rt_``
    and URL-safe characters; a workspace letters, digits, ``-`` and ``_``.
    """
    token = given.token
    if given.kind == "other":
        return "not an AccessToken (eyJ…) or a RefreshToken (rt_…)"
    if len(token) > MAX_TOKEN_LENGTH:
        return f"longer than {MAX_TOKEN_LENGTH} characters"
    if given.workspace is not None and not _WORKSPACE.fullmatch(given.workspace):
        return "the workspace after the comma is not an account id"
    if given.kind == "refresh_token":
        return (
            None if _REFRESH.fullmatch(token) else "a RefreshToken with characters it cannot hold"
        )
    if token.startswith("fk-"):
        return None if _POOL_KEY.fullmatch(token) else "an fk- key with characters it cannot hold"
    parts = token.split(".")
    if len(parts) != 3 or not all(_B64URL.fullmatch(part) for part in parts[:2]):
        return "not a JWT (three base64url parts separated by dots)"
    if parts[2] and not _B64URL.fullmatch(parts[2]):
        return "not a JWT (its signature is not base64url)"
    header, payload = _b64_json(parts[0]), _b64_json(parts[1])
    if not isinstance(header, dict) or "alg" not in header or not isinstance(payload, dict):
        return "not a JWT (its header or payload is not a JSON object)"
    return None


class TokenListError(ValueError):
    """A pasted line is not a token; the message names the line number only."""


def parse_token_lines(text: str) -> list[GivenToken]:
    """One token per line; blank lines and ``#`` comments ignored.

    Raises ``TokenListError`` naming the first line that is neither an
    AccessToken nor a RefreshToken (the line itself is not echoed: it may be
    a secret pasted by mistake).
    """
    out: list[GivenToken] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()  # tokens never contain "#"
        if not line:
            continue
        given = parse_token(line)
        problem = token_problem(given)
        if problem is not None:
            raise TokenListError(f"line {number} is {problem}")
        out.append(given)
    return out
