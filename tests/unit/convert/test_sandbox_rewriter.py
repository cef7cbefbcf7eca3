"""``SandboxRewriter``: streamed text split anywhere gives what the whole text gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chat2api.convert.generated import SandboxRewriter, _partial_prefix

ALPHABET = st.sampled_from([*"sandbox:/mnt/data/f.txt ()[]xs", "sandbox:", " sand", "é"])


def _merge(pieces: list[str | tuple[str, str]]) -> list[str | tuple[str, str]]:
    out: list[str | tuple[str, str]] = []
    for piece in pieces:
        if isinstance(piece, str) and out and isinstance(out[-1], str):
            out[-1] += piece
        else:
            out.append(piece)
    return out


def _run(parts: list[str]) -> list[str | tuple[str, str]]:
    rewriter = SandboxRewriter()
    pieces: list[str | tuple[str, str]] = []
    for part in parts:
        pieces += rewriter.feed(part)
    return _merge(pieces + rewriter.close())


def test_link_target_becomes_a_path() -> None:
    """A ``sandbox:`` target split across deltas comes out whole, text around it intact."""
    parts = ["See [the file](sand", "box:/mnt/da", "ta/out.csv) now", "."]
    assert _run(parts) == ["See [the file](", ("path", "/mnt/data/out.csv"), ") now."]


@given(st.lists(ALPHABET, max_size=40).map("".join), st.lists(st.integers(0, 60), max_size=6))
def test_any_split_gives_the_same_pieces(text: str, cuts: list[int]) -> None:
    """Splitting the text at any points never changes the pieces."""
    points = sorted({min(c, len(text)) for c in cuts})
    parts = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    assert _run(parts) == _run([text])


@given(st.text(alphabet="sandbox:x ", max_size=20))
def test_partial_prefix_is_the_longest_matching_tail(text: str) -> None:
    """The held-back tail is the longest proper prefix of ``sandbox:`` the text ends with."""
    expected = next(
        (n for n in range(min(7, len(text)), 0, -1) if "sandbox:".startswith(text[-n:])), 0
    )
    assert _partial_prefix(text) == expected
