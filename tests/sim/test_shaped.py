"""The simulator's shaped replies: `#sim:json=…` and `#sim:call=NAME`."""

from __future__ import annotations

import json

import jsonschema
import pytest

from chat2api.sim.shaped import BROKEN_JSON, schema_instance, shaped_reply

SCHEMAS = [
    {"type": "object", "properties": {"a": {"type": "string", "minLength": 20}}},
    {
        "type": "object",
        "properties": {
            "kind": {"enum": ["x", "y"]},
            "when": {"type": "string", "format": "date"},
            "n": {"type": "integer", "minimum": 3, "maximum": 5},
            "f": {"type": ["number", "null"]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "maybe": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/Inner"}]},
        },
        "required": ["kind", "when", "n", "f", "tags", "maybe"],
        "$defs": {"Inner": {"type": "object", "properties": {"ok": {"type": "boolean"}}}},
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_instance_fits_schema(schema: dict) -> None:
    """schema_instance builds a value the schema accepts, the same every time."""
    value = schema_instance(schema)
    jsonschema.validate(value, schema)
    assert value == schema_instance(schema)


def test_json_directive_reads_the_schema_and_fixes_broken_later() -> None:
    """json=broken answers broken JSON once; the follow-up answers the fitting object."""
    system = ("system", 'JSON Schema: {"type":"object","properties":{"n":{"type":"integer"}}}')
    first = [system, ("user", "go #sim:json=broken")]
    assert shaped_reply(first) == BROKEN_JSON
    again = [*first, ("assistant", BROKEN_JSON), ("user", "Your answer could not be used.")]
    assert json.loads(shaped_reply(again) or "") == {"n": 42}
    assert json.loads(shaped_reply([system, ("user", "#sim:json=schema")]) or "") == {"n": 42}


def test_call_directive_writes_a_call_block() -> None:
    """call=NAME answers one <tool_call> block with arguments fitting NAME's parameters."""
    tools = "- get_weather: weather\n  parameters: " + json.dumps(
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    )
    reply = shaped_reply([("system", tools), ("user", "weather? #sim:call=get_weather")]) or ""
    assert reply.startswith("<tool_call>\n") and reply.endswith("\n</tool_call>")
    call = json.loads(reply.splitlines()[1])
    assert call["name"] == "get_weather" and set(call["arguments"]) == {"city"}
    assert shaped_reply([("user", "plain")]) is None
