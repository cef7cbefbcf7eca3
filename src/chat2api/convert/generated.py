"""Rendering what the model produced besides text, as markdown in ``content`` (pure).

* code it ran → a fenced block with the language; what it printed → a fenced
  ``Output`` block;
* generated images → ``![image](<download link>)``;
* files it wrote (``sandbox:/mnt/data/…`` link targets in the answer) → the
  same link pointing at a download link;
* citations → `` [title](url)``.

Download links are made by the caller (``Links``); this module only decides
where they go. ``SandboxRewriter`` works on streamed text: it holds back a
possible ``sandbox:`` target until it is complete, and nothing else.
"""

from __future__ import annotations

import re
from typing import Protocol

from chat2api.protocol.events import Citation, CodeRun, ExecutionOutput, ImageGenerated

SANDBOX = "sandbox:"
_FIRST = SANDBOX[0]
_TARGET_END = re.compile(r"[)\s\"'>\]]")


class Links(Protocol):
    """Makes download links for generated content (see ``api.downloads``)."""

    async def image(self, image: ImageGenerated, conversation_id: str | None) -> str: ...

    async def sandbox(
        self, path: str, conversation_id: str | None, message_id: str | None
    ) -> str: ...


def code_block(run: CodeRun) -> str:
    return f"\n\n```{run.language}\n{run.code.rstrip()}\n```\n\n"


def output_block(output: ExecutionOutput) -> str:
    return f"```Output\n{output.text.rstrip()}\n```\n\n"


def image_markdown(link: str) -> str:
    return f"\n\n![image]({link})\n\n"


def citation_markdown(citation: Citation) -> str:
    title = (citation.title or citation.url).replace("]", ")").replace("[", "(")
    return f" [{title}]({citation.url})"


class SandboxRewriter:
    """Finds ``sandbox:`` link targets in streamed text.

    ``feed(text)`` returns pieces: ``str`` for text to pass on, and
    ``("path", p)`` tuples where a ``sandbox:p`` target was; ``close()``
    flushes what is held back.
    """

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> list[str | tuple[str, str]]:
        if not self._held and SANDBOX not in text and _FIRST not in text[1 - len(SANDBOX) :]:
            return [text] if text else []  # what _scan gives: no target, no tail to keep
        return self._scan(self._held + text, final=False)

    def close(self) -> list[str | tuple[str, str]]:
        return self._scan(self._held, final=True)

    def _scan(self, text: str, *, final: bool) -> list[str | tuple[str, str]]:
        self._held = ""
        out: list[str | tuple[str, str]] = []
        while text:
            at = text.find(SANDBOX)
            if at < 0:
                # Keep a tail that could be the start of "sandbox:".
                keep = 0 if final else _partial_prefix(text)
                out.append(text[: len(text) - keep])
                self._held = text[len(text) - keep :]
                break
            out.append(text[:at])
            rest = text[at + len(SANDBOX) :]
            end = _TARGET_END.search(rest)
            if end is None and not final:
                self._held = text[at:]
                break
            stop = end.start() if end is not None else len(rest)
            out.append(("path", rest[:stop]))
            text = rest[stop:]
        return [piece for piece in out if piece]


def _partial_prefix(text: str) -> int:
    """Length of the longest tail of ``text`` that ``SANDBOX`` starts with (0 if none)."""
    first = SANDBOX[0]
    at = text.find(first, max(0, len(text) - (len(SANDBOX) - 1)))
    while at >= 0:  # only tails that start with the first character can match
        if SANDBOX.startswith(text[at:]):
            return len(text) - at
        at = text.find(first, at + 1)
    return 0
