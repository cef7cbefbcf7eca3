"""The token counting worker: ``python -m chat2api.convert.token_worker``.

Reads one JSON request per line on stdin, answers one JSON line on stdout,
in order, until stdin ends. Requests are ``[id, "count", encoding, texts]``
and ``[id, "truncate", encoding, text, limit]``; answers are
``[id, result, null]`` or ``[id, null, "error text"]``. It imports toktok and
orjson only, so the process is the tokenizer's vocabulary and little else
(see ``chat2api.convert.usage``).
"""

from __future__ import annotations

import sys
from typing import Any

import orjson
import toktok


def answer(request: list[Any]) -> Any:
    """The result of one request (raises on a malformed one)."""
    op, encoding = request[1], request[2]
    if op == "count":
        return [int(n) for n in toktok.batch_count(request[3], encoding, threads=1)]
    if op == "truncate":
        text, limit = request[3], request[4]
        kept, total = toktok.truncate(text, limit, encoding)
        return [str(kept), int(total) > limit]
    raise ValueError(f"unknown operation {op!r}")


def main() -> None:
    """Serve requests from stdin until it closes."""
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        request: Any = None
        try:
            request = orjson.loads(line)
            reply = [request[0], answer(request), None]
        except (ValueError, KeyError, TypeError, IndexError) as exc:  # a bad request
            ident = request[0] if isinstance(request, list) and request else None
            reply = [ident, None, f"{type(exc).__name__}: {exc}"]
        out.write(orjson.dumps(reply) + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
