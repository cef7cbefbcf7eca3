"""repair_arguments and the streaming JSON normalizer behind the argument deltas."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat2api.convert.tools.repair import JsonNormalizer, JsonRepairError, repair_arguments


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"a": 1, "b": [1, 2]}', '{"a":1,"b":[1,2]}'),
        ('  {\n  "a" : "x y"\n}\n', '{"a":"x y"}'),
        ('{"a": "\\u00e9\\n", "b": -1.5e+3}', '{"a":"\\u00e9\\n","b":-1.5e+3}'),
        ('{"a": 1, "b": [1, 2,],}', '{"a":1,"b":[1,2]}'),
        ('{"a": {"b": [1, 2]', '{"a":{"b":[1,2]}}'),
        ('{"a": 1', '{"a":1}'),
        ("{'a': 'x', 'b': 'say \"hi\"'}", '{"a":"x","b":"say \\"hi\\""}'),
        ("{'a': 'it\\'s'}", '{"a":"it\'s"}'),
        ('{"a": True, "b": False, "c": None}', '{"a":true,"b":false,"c":null}'),
        ('{"a": "line1\nline2\ttab\x01"}', '{"a":"line1\\nline2\\ttab\\u0001"}'),
        ('```json\n{"a": 1}\n```', '{"a":1}'),
        ('```\n{"a": 1}\n```\n', '{"a":1}'),
        ('"{\\"a\\": 1}"', '{"a":1}'),
        ("\"{'a': True,}\"", '{"a":true}'),
        ('{"path": "C:\\Users\\me", "re": "\\d+"}', '{"path":"C:\\\\Users\\\\me","re":"\\\\d+"}'),
        ('{"a": "don\\\'t"}', '{"a":"don\'t"}'),
    ],
    ids=[
        "valid",
        "whitespace",
        "escapes-and-numbers-verbatim",
        "trailing-commas",
        "missing-closers",
        "missing-final-brace",
        "single-quotes",
        "escaped-apostrophe-in-single-quotes",
        "python-literals",
        "control-chars",
        "fence-json",
        "fence-bare",
        "double-encoded",
        "double-encoded-needing-repair",
        "invalid-escapes",
        "backslash-apostrophe",
    ],
)
def test_repairs(raw: str, expected: str) -> None:
    """Each unambiguous fix gives compact JSON with the intended value."""
    assert repair_arguments(raw) == expected
    json.loads(expected)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not json",
        '{"a": 1} trailing',
        '{"a": 1,',
        '{"a": ',
        '{"a": "unterminated',
        "{a: 1}",
        '{"a": NaN}',
        '{"a": 01x}',
        '{"a": 1 "b": 2}',
        "{'a': 'it's'}",
        "// comment\n{}",
        "[1, 2]",
        '"just a string"',
        '{"a": "\\uZZZZ"}',
        "{,}",
        "[,1]",
    ],
)
def test_unrepairable_is_none(raw: str) -> None:
    """Text with no single obvious JSON object reading gives None."""
    assert repair_arguments(raw) is None


def test_fixes_are_named() -> None:
    """The normalizer records which kinds of repair it applied."""
    normalizer = JsonNormalizer()
    out: list[str] = []
    normalizer.feed("{'a': True, 'b': \"x\ny\",", out)
    with pytest.raises(JsonRepairError):
        normalizer.finish(out)  # a dangling comma at the end is a cut-off, not a fix
    assert normalizer.fixes == {
        "single-quoted string",
        "python literal",
        "control character in string",
    }


def test_feed_returns_the_end_of_the_value() -> None:
    """feed reports where the value ended so the caller can read on after it."""
    normalizer = JsonNormalizer()
    out: list[str] = []
    assert normalizer.feed('{"a": [1, ', out) == -1
    assert normalizer.feed("2]} rest", out) == 3
    assert "".join(out) == '{"a":[1,2]}'


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    value=st.dictionaries(st.text(max_size=8), _JSON, max_size=5),
    indent=st.sampled_from([None, 0, 1, 2, "\t"]),
    ascii_only=st.booleans(),
    cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=12),
)
def test_valid_json_normalizes_to_compact_under_any_split(
    value: dict[str, object], indent: int | str | None, ascii_only: bool, cuts: list[int]
) -> None:
    """Valid JSON in any layout, fed in any pieces, comes out as json.dumps' compact form."""
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    normalizer = JsonNormalizer()
    out: list[str] = []
    points = [0, *sorted({c for c in cuts if c < len(text)}), len(text)]
    for a, b in itertools.pairwise(points):
        assert normalizer.feed(text[a:b], out) in (-1, b - a)
    normalizer.finish(out)
    assert "".join(out) == json.dumps(value, separators=(",", ":"), ensure_ascii=ascii_only)
    assert normalizer.fixes == set()


@settings(max_examples=300, deadline=None)
@given(raw=st.text(alphabet=st.sampled_from(list("{}[]\"',: \n\\tTrueNonal1-.x")), max_size=40))
def test_repair_output_is_always_a_json_object_or_none(raw: str) -> None:
    """Whatever the input, repair_arguments returns a JSON object text or None, never raises."""
    result = repair_arguments(raw)
    if result is not None:
        assert isinstance(json.loads(result), dict)
