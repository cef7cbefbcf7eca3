"""Deterministic replies, reasoning text, directives and chunking."""

from __future__ import annotations

from chat2api.sim.replies import (
    VOCABULARY,
    parse_directives,
    reasoning_text,
    reply_text,
    split_chunks,
    title_text,
)


def test_say_exactly_returns_the_rest_stripped() -> None:
    """`say exactly:` (any case) makes the reply the rest of the prompt, stripped."""
    assert reply_text("Please SAY EXACTLY:   Hi there!  ", 30) == "Hi there!"
    assert reply_text("say exactly: a\nb", 3) == "a\nb"


def test_hashed_reply_is_deterministic_and_sized() -> None:
    """Without the marker the reply is N vocabulary words, capitalised, ending with '.'."""
    first = reply_text("hello", 12)
    assert first == reply_text("hello", 12)
    assert first != reply_text("hello!", 12)
    words = first.rstrip(".").split(" ")
    assert len(words) == 12
    assert words[0][0].isupper() and all(w.lower() in VOCABULARY for w in words)
    assert reply_text("hello", 0) == ""


def test_directives_are_parsed_and_stripped() -> None:
    """`#sim:` directives set fault/words/delay and vanish from the prompt."""
    d = parse_directives("#sim:fault=rate_limited say exactly: ok #sim:words=3 #sim:delay_ms=20")
    assert (d.fault, d.words, d.delay_ms) == ("rate_limited", 3, 20)
    assert d.prompt == "say exactly: ok"
    assert parse_directives("plain").fault is None


def test_split_chunks_round_trips() -> None:
    """Chunks concatenate back to the exact text, whitespace included."""
    text = "  Hello,\n wide   world!  "
    for n in (1, 2, 5):
        assert "".join(split_chunks(text, n)) == text
    assert split_chunks("a b c", 1) == ["a", " b", " c"]
    assert split_chunks("", 1) == []


def test_reasoning_and_title_are_deterministic() -> None:
    """reasoning_text and title_text are pure functions of the prompt."""
    assert reasoning_text("x") == reasoning_text("x") != reasoning_text("y")
    assert reasoning_text("x").startswith("Reading the request (digest ")
    assert title_text("one two three four five six") == "one two three four five"
    assert title_text("") == "New chat"
