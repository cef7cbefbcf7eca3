"""Relative links in the README and docs/ lead to files that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", ROOT / "bench" / "README.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")


def broken_links(doc: Path) -> list[str]:
    """The relative link targets of ``doc`` (anchors aside) that name no file."""
    broken = []
    # Code blocks and spans hold examples of links, not links.
    text = re.sub(r"```.*?```", "", doc.read_text("utf-8"), flags=re.S)
    text = re.sub(r"`[^`]*`", "", text)
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # a URL, or a place in the same page
        if not (doc.parent / target.split("#", 1)[0]).exists():
            broken.append(target)
    return broken


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    """Every relative Markdown link of the page names an existing file."""
    assert broken_links(doc) == []


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    """A link to a missing file is reported; URLs, anchors and existing files are not."""
    (tmp_path / "there.md").write_text("x")
    page = tmp_path / "page.md"
    page.write_text(
        "[a](there.md#part) [b](gone.md) [c](https://x.example/y) [d](#top) `[e](code.md)`"
    )
    assert broken_links(page) == ["gone.md"]
