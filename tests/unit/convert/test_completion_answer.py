"""The answer's id and text as ``Answer`` builds them."""

from __future__ import annotations

import asyncio
import re
import string
from collections import Counter

from chat2api.convert.completion import Answer, completion_id
from chat2api.convert.models import resolve_model
from chat2api.protocol.events import Citation, TextDelta


def test_completion_id_format_and_letters() -> None:
    """``chatcmpl-`` and 29 letters of [A-Za-z0-9], every one of the 62 drawn about as often."""
    ids = [completion_id() for _ in range(4000)]
    assert all(re.fullmatch(r"chatcmpl-[A-Za-z0-9]{29}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    counts = Counter("".join(i[len("chatcmpl-") :] for i in ids))
    assert set(counts) == set(string.ascii_letters + string.digits)
    expected = 4000 * 29 / 62  # ~1871 each; a biased letter (e.g. b % 62 over 256) is ~25% off
    assert all(abs(n - expected) < 0.12 * expected for n in counts.values())


def test_a_long_answer_of_many_pieces_folds_to_its_text() -> None:
    """Thousands of deltas (some empty, some not ASCII) give the text they spell, read at any time.

    A citation in the middle is placed by the length of the text before it.
    """
    pieces = [
        ["", "word ", "ü", "€ ", "\U0001f600", "line\n"][i % 6] * (i % 4) for i in range(6000)
    ]

    async def fold() -> tuple[Answer, list[str]]:
        answer = Answer(resolve_model("gpt-4o"), [], None, None)  # type: ignore[arg-type]
        sent: list[str] = []
        for i, piece in enumerate(pieces):
            for delta in await answer.apply(TextDelta(piece)):
                sent.append(delta["content"])
            if i == 3000:
                assert answer.content == "".join(sent)  # read midway, then more added
                for delta in await answer.apply(Citation("https://example.com/a", "A")):
                    sent.append(delta["content"])
        return answer, sent

    answer, sent = asyncio.run(fold())
    cited = " [A](https://example.com/a)"
    text = "".join(pieces[:3001]) + cited + "".join(pieces[3001:])
    assert "".join(sent) == text
    assert answer.content == text
    (span,) = [a["url_citation"] for a in answer.annotations]
    assert text[span["start_index"] : span["end_index"]] == cited.lstrip()
    assert answer.completion({})["choices"][0]["message"]["content"] == text
