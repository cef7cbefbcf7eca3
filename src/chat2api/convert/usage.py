"""Offline token counting (o200k / cl100k, compiled into ``toktok``; no download).

Prompt tokens follow OpenAI's published chat accounting: 3 tokens per
message, plus the role and content tokens, plus 1 for a ``name``, plus 3 to
prime the reply.
"""

from __future__ import annotations

from collections.abc import Sequence

import toktok

from chat2api.convert.models import Encoding

_PER_MESSAGE = 3
_PER_NAME = 1
_REPLY_PRIMING = 3


def count_tokens(text: str, encoding: Encoding) -> int:
    """Tokens in ``text``."""
    if not text:
        return 0
    return int(toktok.batch_count([text], encoding, threads=1)[0])


def count_prompt_tokens(turns: Sequence[tuple[str, str, str | None]], encoding: Encoding) -> int:
    """Tokens of a chat prompt given as ``(role, text, name)`` turns."""
    texts: list[str] = []
    for role, text, name in turns:
        texts.append(role)
        texts.append(text)
        if name:
            texts.append(name)
    counts = toktok.batch_count(texts, encoding, threads=1) if texts else []
    names = sum(_PER_NAME for _, _, name in turns if name)
    return int(sum(counts)) + _PER_MESSAGE * len(turns) + names + _REPLY_PRIMING


def truncate_tokens(text: str, limit: int, encoding: Encoding) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` tokens, and whether it was cut."""
    kept, total = toktok.truncate(text, limit, encoding)
    return str(kept), int(total) > limit
