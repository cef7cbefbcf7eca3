"""The token counting worker: ``python -m chat2api.convert.token_worker``.

Reads one JSON request per line on stdin, answers one JSON line on stdout,
in order, until stdin ends. Requests are ``[id, "count", encoding, texts]``
and ``[id, "truncate", encoding, text, limit]``; answers are
``[id, result, null]`` or ``[id, null, "error text"]``. It imports toktok and
orjson only, so the process is the tokenizer's vocabulary and little else
(see ``chat2api.convert.usage``).

Every request that one read brought in is answered in one write: under
load, the server is woken once per batch, not once per answer.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import orjson
import toktok

_NO_LIMIT = sys.maxsize
_READ_SIZE = 1 << 16


def count(texts: list[str], encoding: str) -> list[int]:
    """Tokens in each text.

    Not ``toktok.batch_count``: it sets up its thread pool on every call
    (reading the cgroup's CPU quota, mapping a stack), which costs more than
    counting a short chat turn. ``truncate`` counts one text in
    one pass with no pool; with a limit no text reaches it cuts nothing and
    returns the whole count.
    """
    return [int(toktok.truncate(text, _NO_LIMIT, encoding)[1]) for text in texts]


def answer(request: list[Any]) -> Any:
    """The result of one request (raises on a malformed one)."""
    op, encoding = request[1], request[2]
    if op == "count":
        return count(request[3], encoding)
    if op == "truncate":
        text, limit = request[3], request[4]
        kept, total = toktok.truncate(text, limit, encoding)
        return [str(kept), int(total) > limit]
    raise ValueError(f"unknown operation {op!r}")


def reply(line: bytes) -> bytes:
    """The answer line to one request line."""
    request: Any = None
    try:
        request = orjson.loads(line)
        result = [request[0], answer(request), None]
    except (ValueError, KeyError, TypeError, IndexError) as exc:  # a bad request
        ident = request[0] if isinstance(request, list) and request else None
        result = [ident, None, f"{type(exc).__name__}: {exc}"]
    return orjson.dumps(result) + b"\n"


def main() -> None:
    """Serve requests from stdin until it closes."""
    out = sys.stdout.buffer
    stdin = sys.stdin.buffer.fileno()
    partial = bytearray()  # a request line not yet read to its end
    while chunk := os.read(stdin, _READ_SIZE):
        partial += chunk
        end = partial.rfind(b"\n")
        if end < 0:
            continue
        lines = bytes(partial[:end]).split(b"\n")
        del partial[: end + 1]
        out.write(b"".join(reply(line) for line in lines if line))
        out.flush()


if __name__ == "__main__":
    main()
