"""The answer's id and text as ``Answer`` builds them."""

from __future__ import annotations

import re
import string
from collections import Counter

from chat2api.convert.completion import completion_id


def test_completion_id_format_and_letters() -> None:
    """``chatcmpl-`` and 29 letters of [A-Za-z0-9], every one of the 62 drawn about as often."""
    ids = [completion_id() for _ in range(4000)]
    assert all(re.fullmatch(r"chatcmpl-[A-Za-z0-9]{29}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    counts = Counter("".join(i[len("chatcmpl-") :] for i in ids))
    assert set(counts) == set(string.ascii_letters + string.digits)
    expected = 4000 * 29 / 62  # ~1871 each; a biased letter (e.g. b % 62 over 256) is ~25% off
    assert all(abs(n - expected) < 0.12 * expected for n in counts.values())
