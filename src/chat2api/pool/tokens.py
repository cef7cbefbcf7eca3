"""Recognising the kinds of token a user gives (spec 7.1), and pasted token lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
        if given.kind == "other":
            raise TokenListError(
                f"line {number} is not an AccessToken (eyJ…) or a RefreshToken (rt_…)"
            )
        out.append(given)
    return out
