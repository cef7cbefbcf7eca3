"""Deterministic reply and reasoning text, and the `#sim:` directives.

Tests assert exact text, so everything the simulator "says" is a pure function
of the prompt:

* `say exactly: X` anywhere in the prompt (case-insensitive) makes the reply
  exactly `X` (the rest of the prompt after the marker, stripped);
* otherwise the reply is `words` words drawn from a fixed vocabulary by
  SHA-256 of the prompt, the first one capitalised, the last one followed by ".".

Directives are `#sim:<name>=<value>` tokens in the last user message; they are
removed (and the remaining text stripped) before the prompt is used.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

VOCABULARY: tuple[str, ...] = (
    "alpha", "bright", "cedar", "delta", "ember", "fable", "garnet", "harbor",
    "island", "jasper", "kettle", "lantern", "meadow", "nectar", "orbit", "pepper",
    "quartz", "river", "saffron", "timber", "umber", "velvet", "willow", "xenon",
    "yonder", "zephyr", "amber", "basil", "copper", "dune", "echo", "fern",
    "glacier", "hazel", "indigo", "juniper", "kelp", "lilac", "maple", "nimbus",
    "olive", "prism", "quill", "ripple", "sierra", "tundra", "ultra", "vista",
    "walnut", "yarrow", "zenith", "acorn", "breeze", "canyon", "dahlia", "falcon",
    "granite", "heron", "iris", "jade", "koala", "lotus", "mango", "nova",
)  # fmt: skip

SAY_EXACTLY = re.compile(r"say exactly:", re.IGNORECASE)
DIRECTIVE = re.compile(r"#sim:([a-z_]+)=(\S*)")
# Generated-content directives (no value): what the turn produces besides text.
GENERATE = re.compile(r"#sim:(image_async|image|sandbox|cite)(?![\w=])")
GENERATED_KINDS = ("image", "image_async", "sandbox", "cite")
THOUGHT_SUMMARY = "Planning the reply"


@dataclass(frozen=True, slots=True)
class Directives:
    """Per-request knobs found in the last user message."""

    prompt: str
    fault: str | None = None
    words: int | None = None
    delay_ms: int | None = None
    kind: str | None = None


def parse_directives(text: str) -> Directives:
    """Split `#sim:fault=…`, `#sim:words=N`, `#sim:delay_ms=N`, `#sim:<kind>` from the text.

    `<kind>` is one of `image`, `image_async`, `sandbox`, `cite` (the last one wins).
    """
    kinds = GENERATE.findall(text)
    text = GENERATE.sub("", text)
    fault: str | None = None
    words: int | None = None
    delay_ms: int | None = None
    for name, value in DIRECTIVE.findall(text):
        if name == "fault" and value:
            fault = value
        elif name == "words" and value.isdigit():
            words = int(value)
        elif name == "delay_ms" and value.isdigit():
            delay_ms = int(value)
    prompt = DIRECTIVE.sub("", text).strip()
    return Directives(
        prompt=prompt,
        fault=fault,
        words=words,
        delay_ms=delay_ms,
        kind=kinds[-1] if kinds else None,
    )


def content_text(content: object) -> str:
    """The text of a message's `content`: string `parts` joined with newlines, else `text`."""
    if not isinstance(content, dict):
        return ""
    parts = content.get("parts")
    if isinstance(parts, list):
        return "\n".join(p for p in parts if isinstance(p, str))
    text = content.get("text")
    return text if isinstance(text, str) else ""


def _hashed_words(seed: str, count: int) -> list[str]:
    out: list[str] = []
    counter = 0
    while len(out) < count:
        block = hashlib.sha256(f"{counter}:{seed}".encode()).digest()
        out.extend(VOCABULARY[b % len(VOCABULARY)] for b in block)
        counter += 1
    return out[:count]


def reply_text(prompt: str, words: int) -> str:
    """The assistant's answer to `prompt` (directives already removed)."""
    match = SAY_EXACTLY.search(prompt)
    if match:
        return prompt[match.end() :].strip()
    if words <= 0:
        return ""
    chosen = _hashed_words(prompt, words)
    chosen[0] = chosen[0].capitalize()
    return " ".join(chosen) + "."


def reasoning_text(prompt: str) -> str:
    """The content of the single thought a reasoning model streams before answering."""
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:8]
    picks = " ".join(_hashed_words("thought:" + prompt, 6))
    return f"Reading the request (digest {digest}). Key ideas: {picks}. Answer plainly."


def title_text(prompt: str) -> str:
    """The `title_generation` title for a new conversation: the first five prompt words."""
    head = prompt.split()[:5]
    return " ".join(head) if head else "New chat"


def split_chunks(text: str, words_per_chunk: int) -> list[str]:
    """Cut text into stream chunks of N words each; concatenating them gives `text` back."""
    pieces = re.findall(r"\s*\S+", text)
    if not pieces:
        return [text] if text else []
    trailing = text[len("".join(pieces)) :]
    if trailing:
        pieces[-1] += trailing
    return [
        "".join(pieces[i : i + words_per_chunk]) for i in range(0, len(pieces), words_per_chunk)
    ]
