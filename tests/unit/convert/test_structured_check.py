"""The response-format check: tolerant reading, schema validation, what streams."""

from __future__ import annotations

import pytest

from chat2api.convert.structured import (
    OutputFormat,
    StructuredAnswer,
    chat_response_format,
    check_answer,
)
from chat2api.errors import InvalidRequest, ModelOutputError

SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer"}},
    "required": ["n"],
    "additionalProperties": False,
}
FMT = OutputFormat("json_schema", "thing", SCHEMA, strict=True)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ('{"n": 1}', '{"n": 1}'),
        ('  {"n": 1}\n', '{"n": 1}'),
        ('```json\n{"n": 1}\n```', '{"n":1}'),
        ("{'n': 1,}", '{"n":1}'),
        ('The answer: {"n": 1} as asked.', '{"n":1}'),
    ],
)
def test_fitting_answers(raw: str, text: str) -> None:
    """Valid JSON is kept as written; repairable answers come back repaired."""
    assert check_answer(FMT, raw) == (text, None)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("no json here", "not a JSON object"),
        ("[1, 2]", "not an object"),
        ('{"n": "one"}', "answer.n: 'one' is not of type 'integer'"),
        ('{"n": 1, "m": 2}', "Additional properties"),
    ],
)
def test_unfitting_answers(raw: str, why: str) -> None:
    """An answer off the format is refused with the reason the model is told."""
    text, reason = check_answer(FMT, raw)
    assert text is None and reason is not None and why in reason


def test_stream_opening_with_brace_goes_out_at_once() -> None:
    """A live attempt opening with { streams as it comes; one opening with prose is held."""
    live = StructuredAnswer(FMT, live=True)
    assert [live.feed(p) for p in (" ", '{"n"', ": 1}")] == ["", ' {"n"', ": 1}"]
    assert live.close() == ""
    held = StructuredAnswer(FMT, live=True)
    assert held.feed("Sure: ") == "" and held.feed('{"n": 2}') == ""
    assert held.close() == '{"n":2}'


def test_one_correction_then_error() -> None:
    """An unfitting attempt asks once for a correction; a second one raises."""
    answer = StructuredAnswer(FMT, live=False)
    answer.feed("nope")
    assert answer.close() == "" and answer.wants_correction
    turns = answer.correction_turns()
    assert turns[0] == ("assistant", "nope", None) and "JSON Schema:" in turns[1][1]
    answer.feed('{"n": "x"}')
    with pytest.raises(ModelOutputError) as caught:
        answer.close()
    assert caught.value.code == "invalid_structured_output"


def test_streamed_unfitting_attempt_cannot_be_corrected() -> None:
    """What already went out cannot be taken back: the stream gets the error."""
    answer = StructuredAnswer(FMT, live=True)
    answer.feed('{"n": "x"}')
    with pytest.raises(ModelOutputError):
        answer.close()


def test_response_format_shapes() -> None:
    """text is no format; json_schema needs a name and a valid schema."""
    assert chat_response_format({"type": "text"}) is None
    assert chat_response_format({"type": "json_object"}) is not None
    with pytest.raises(InvalidRequest) as caught:
        chat_response_format({"type": "json_schema", "json_schema": {"schema": {}}})
    assert caught.value.param == "response_format.json_schema.name"


def test_streamed_answer_must_be_valid_as_sent() -> None:
    """A streamed attempt that fits only once repaired is an error: the client has it as sent."""
    answer = StructuredAnswer(FMT, live=True)
    assert answer.feed('{"n": 1,}') == '{"n": 1,}'
    with pytest.raises(ModelOutputError) as caught:
        answer.close()
    assert "needed repairs" in caught.value.message
