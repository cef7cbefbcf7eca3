"""The one path the gateway decides on and sends upstream.

A browser's request path is decided on (blocked table, reserved prefixes,
conversation leases) and forwarded. If the two differ, the decision is
worthless: libcurl removes dot segments, servers decode ``%2e`` and collapse
``//``, so ``/backend-api/x/../accounts/deactivate`` would pass a check on the
raw path and still reach ``accounts/deactivate``. So the raw path is
normalised here ONCE (percent-decoded once, dot segments removed, repeated
slashes collapsed), everything is decided on the result, and exactly that
result, re-encoded, goes upstream. What cannot be normalised unambiguously is
refused: encoded slashes and backslashes, NUL and other control characters,
a ``%`` left after decoding (double encoding), bytes that are not UTF-8.
"""

from __future__ import annotations

import re
import urllib.parse

# Characters a path segment may carry unencoded (RFC 3986 pchar minus '%').
_SAFE = "/-._~!$&'()*+,;=:@"
_AMBIGUOUS = re.compile(r"%(2f|5c|00)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\%]")


class BadPath(ValueError):
    """A request path the gateway refuses to interpret."""


def normalise(raw: bytes | str) -> str:
    """The decoded path with dot segments removed and slashes collapsed.

    ``raw`` is the path as it came on the request line (ASGI ``raw_path``),
    without the query. Raises ``BadPath`` for what the module docstring lists.
    """
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    if _AMBIGUOUS.search(text):
        raise BadPath("encoded slashes, backslashes and NUL are not allowed in a path")
    try:
        decoded = urllib.parse.unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadPath("the path is not UTF-8") from exc
    if _CONTROL.search(decoded):
        raise BadPath("control characters, backslashes and double encoding are not allowed")
    segments: list[str] = []
    for segment in decoded.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    path = "/" + "/".join(segments)
    if segments and decoded.endswith(("/", "/.", "/..")):
        path += "/"
    return path


def encoded(path: str) -> str:
    """A normalised path as it goes on the upstream request line."""
    return urllib.parse.quote(path, safe=_SAFE)


def request_path(scope_path: str, raw_path: bytes | None) -> str:
    """The normalised path of a request: its raw path when the server kept it."""
    return normalise(raw_path if raw_path is not None else urllib.parse.quote(scope_path, _SAFE))
