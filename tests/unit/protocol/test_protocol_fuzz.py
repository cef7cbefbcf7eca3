"""Fuzzing: mutated fixture streams only ever raise the protocol's own errors (h11's rule)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat2api.protocol.errors import ProtocolError
from chat2api.protocol.events import Event
from chat2api.protocol.sse import SSEDecoder
from chat2api.protocol.stream import ConversationDecoder

STREAMS = Path(__file__).resolve().parents[2] / "fixtures" / "streams"
FIXTURES = {path.stem: path.read_bytes() for path in sorted(STREAMS.glob("*.sse"))}
NAMES = sorted(FIXTURES)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["", "/", "/message", "/message/content/parts/0", "~", "-", "v1", "[DONE]"])
    | st.sampled_from(["append", "patch", "add", "replace", "remove", "truncate", "assistant"])
    | st.sampled_from(["finished_successfully", "thoughts", "text", "moderation", "all"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["p", "o", "v", "c", "message", "type", "error", "content", "parts"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


def run(body: bytes, cuts: list[int]) -> list[Event]:
    """Feed ``body`` cut at ``cuts`` and close; return all events."""
    decoder = ConversationDecoder(max_event_size=1 << 16)
    events: list[Event] = []
    start = 0
    for point in [*sorted(set(cuts)), len(body)]:
        events += decoder.feed(body[start:point])
        start = point
    return events + decoder.close()


def only_protocol_errors(body: bytes, cuts: list[int]) -> None:
    with contextlib.suppress(ProtocolError):
        run(body, cuts)


@st.composite
def byte_mutations(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    body = bytearray(FIXTURES[draw(st.sampled_from(NAMES))])
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "duplicate"]))
        at = draw(st.integers(min_value=0, max_value=max(0, len(body) - 1)))
        if kind == "flip" and body:
            body[at] = draw(st.integers(min_value=0, max_value=255))
        elif kind == "insert":
            body[at:at] = draw(
                st.binary(min_size=1, max_size=8) | st.sampled_from([b"\r", b"\n\n"])
            )
        elif kind == "delete":
            del body[at : at + draw(st.integers(min_value=1, max_value=40))]
        else:
            body[at:at] = body[at : at + draw(st.integers(min_value=1, max_value=200))]
    cuts = draw(st.lists(st.integers(min_value=0, max_value=len(body)), max_size=8))
    return bytes(body), cuts


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    value[head] = _replace(value[head], rest, new)
    return value


def _records(body: bytes) -> list[tuple[str, str]]:
    return [(e.event, e.data) for e in SSEDecoder().feed(body)]


RECORDS = {name: _records(body) for name, body in FIXTURES.items()}


@st.composite
def json_mutations(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    """Keep the framing, replace values deep inside the JSON records with random JSON."""
    records = list(RECORDS[draw(st.sampled_from(NAMES))])
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        index = draw(st.integers(min_value=0, max_value=len(records) - 1))
        event, data = records[index]
        try:
            value = json.loads(data)
        except ValueError:
            value = data
        path = draw(st.sampled_from(_paths(value)))
        if draw(st.booleans()) and isinstance(value, dict | list):
            value = _replace(value, path, draw(json_values))
        else:
            value = draw(json_values)
        records[index] = (event, json.dumps(value))
    if draw(st.booleans()):  # sometimes drop or reorder a record too
        i = draw(st.integers(min_value=0, max_value=len(records) - 1))
        j = draw(st.integers(min_value=0, max_value=len(records) - 1))
        records[i], records[j] = records[j], records[i]
    body = "".join(
        ("" if event == "message" else f"event: {event}\n") + f"data: {data}\n\n"
        for event, data in records
    ).encode()
    cuts = draw(st.lists(st.integers(min_value=0, max_value=len(body)), max_size=4))
    return body, cuts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=byte_mutations())
def test_byte_mutations_only_raise_protocol_errors(case: tuple[bytes, list[int]]) -> None:
    """Flipped, inserted, deleted and duplicated bytes only ever raise ProtocolError."""
    only_protocol_errors(*case)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=json_mutations())
def test_json_mutations_only_raise_protocol_errors(case: tuple[bytes, list[int]]) -> None:
    """Random JSON swapped into any record's fields only ever raises ProtocolError."""
    only_protocol_errors(*case)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=5))
def test_random_bytes_only_raise_protocol_errors(body: bytes, cuts: list[int]) -> None:
    """Pure garbage only ever raises ProtocolError."""
    only_protocol_errors(body, [c for c in cuts if c <= len(body)])


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(NAMES), cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_random_splits_of_fixtures_give_same_events(name: str, cuts: list[int]) -> None:
    """Cutting a fixture anywhere gives the same events (or the same error)."""
    body = FIXTURES[name]
    cuts = [c % (len(body) + 1) for c in cuts]

    def outcome(points: list[int]) -> object:
        try:
            return run(body, points)
        except ProtocolError as exc:
            return type(exc)

    assert outcome(cuts) == outcome([])
