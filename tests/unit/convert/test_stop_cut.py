"""``stop`` sequences found in text fed in pieces of any size."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from chat2api.convert.stop import StopCut

TEXT = "Thought: look it up\nAction: search\nObservation: 42 results\nmore"
STOPS = ["\nObservation:", "never"]


def _run(text: str, cuts: list[int], stops: list[str]) -> tuple[str, bool]:
    cut = StopCut(stops)
    out: list[str] = []
    bounds = [0, *sorted(cuts), len(text)]
    for start, end in itertools.pairwise(bounds):
        sent, stopped = cut.feed(text[start:end])
        out.append(sent)
        if stopped:
            return "".join(out), True
    return "".join(out) + cut.flush(), False


@given(st.lists(st.integers(0, len(TEXT)), max_size=12))
def test_split_anywhere(cuts: list[int]) -> None:
    """Wherever the upstream splits the text, the answer ends right before the stop string."""
    assert _run(TEXT, cuts, STOPS) == ("Thought: look it up\nAction: search", True)


@given(st.text(alphabet="ab\n:O", max_size=40), st.lists(st.integers(0, 40), max_size=8))
def test_matches_one_shot_search(text: str, cuts: list[int]) -> None:
    """Piecewise cutting gives what cutting the whole text at the first stop string gives."""
    stops = ["\nO", "ab:"]
    cuts = [c for c in cuts if c <= len(text)]
    first = min((i for s in stops if (i := text.find(s)) >= 0), default=-1)
    expected = (text[:first], True) if first >= 0 else (text, False)
    assert _run(text, cuts, stops) == expected


def test_a_partial_match_is_sent_when_it_breaks_off() -> None:
    """A held prefix of a stop string is sent once the text moves on, or at the end."""
    cut = StopCut(["STOP"])
    assert cut.feed("go ST") == ("go ", False)
    assert cut.feed("ay") == ("STay", False)
    assert cut.feed(" ST") == (" ", False)
    assert cut.flush() == "ST"
