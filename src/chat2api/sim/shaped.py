"""Shaped replies: `#sim:json=schema`, `#sim:json=broken`, `#sim:call=NAME`.

Client libraries ask for structured output or make the model call a tool,
and then check the object they get back, which the hashed reply can never
satisfy. These directives make the simulator answer like a model that
follows the instructions a client of this simulator wrote into the prompt,
in the shapes `docs/tools.md` describes (read here from the prompt text, as
a model would: nothing is imported from the client side):

* `#sim:json=schema`: a JSON object fitting the last schema that follows
  `JSON Schema:` anywhere in the prompt (`{"answer": <hashed words>}` when
  there is none), as `schema_instance` builds it;
* `#sim:json=broken`: a JSON object cut off inside a string (the fault a
  client should correct once);
* `#sim:call=NAME`: one `<tool_call>` block calling `NAME` with arguments
  fitting the parameters listed for it (`- NAME: …` then `  parameters: {…}`).

Directives are read from the last user message. When it has none (a tool
result, a correction request, the next turn), the latest earlier user
message with a `json` directive decides: that answer is the fitting object
(so `broken` fails only once).
"""

from __future__ import annotations

import json
import re
from typing import Any

from chat2api.sim.replies import DIRECTIVE, reply_text
from chat2api.sim.state import Script

__all__ = ["BROKEN_JSON", "schema_instance", "shaped_reply", "shaped_script"]

SHAPE = re.compile(r"#sim:(json|call)=(\S+)")
SCHEMA_LABEL = "JSON Schema:"
BROKEN_JSON = '{"answer": "this string never ends'
_FORMATS = {
    "date-time": "2026-01-02T03:04:05Z",
    "date": "2026-01-02",
    "time": "03:04:05",
    "email": "ada@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
_MAX_DEPTH = 12


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    node: Any = root
    for part in ref.removeprefix("#/").split("/") if ref.startswith("#/") else []:
        node = (
            node.get(part.replace("~1", "/").replace("~0", "~"), {})
            if isinstance(node, dict)
            else {}
        )
    return node if isinstance(node, dict) else {}


def schema_instance(schema: object, key: str = "value", root: object = None, depth: int = 0) -> Any:
    """A deterministic value fitting `schema` (strings are hashed words of their key)."""
    if not isinstance(schema, dict):
        return reply_text(key, 1).rstrip(".").lower()
    top = root if isinstance(root, dict) else schema
    if depth > _MAX_DEPTH:
        return None
    if isinstance(schema.get("$ref"), str):
        merged = {
            **_resolve(schema["$ref"], top),
            **{k: v for k, v in schema.items() if k != "$ref"},
        }
        return schema_instance(merged, key, top, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for union in ("anyOf", "oneOf"):
        options = schema.get(union)
        if isinstance(options, list) and options:
            usable = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return schema_instance((usable or options)[0], key, top, depth + 1)
    if isinstance(schema.get("allOf"), list):
        out: dict[str, Any] = {}
        for part in schema["allOf"]:
            value = schema_instance(part, key, top, depth + 1)
            if isinstance(value, dict):
                out.update(value)
        return out
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return {}
        return {
            name: schema_instance(sub, name, top, depth + 1) for name, sub in properties.items()
        }
    if kind == "array":
        count = max(1, int(schema.get("minItems", 1)))
        if schema.get("maxItems") == 0:
            count = 0
        items = schema.get("items", {})
        return [schema_instance(items, key, top, depth + 1) for _ in range(count)]
    if kind == "integer":
        low, high = (
            schema.get("minimum", 42 if "maximum" not in schema else None),
            schema.get("maximum"),
        )
        value = int(low) if isinstance(low, int | float) else 42
        return min(value, int(high)) if isinstance(high, int | float) else value
    if kind == "number":
        low, high = schema.get("minimum"), schema.get("maximum")
        value = float(low) if isinstance(low, int | float) else 4.5
        return min(value, float(high)) if isinstance(high, int | float) else value
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    text = _FORMATS.get(str(schema.get("format")), reply_text(key, 1).rstrip(".").lower())
    need = schema.get("minLength")
    if isinstance(need, int) and len(text) < need:
        text = text + "x" * (need - len(text))
    return text


def _last_schema(prompt: list[tuple[str, str]]) -> dict[str, Any] | None:
    decoder = json.JSONDecoder()
    found: dict[str, Any] | None = None
    for _, text in prompt:
        start = 0
        while (at := text.find(SCHEMA_LABEL, start)) >= 0:
            start = at + len(SCHEMA_LABEL)
            try:
                value, _ = decoder.raw_decode(text[start:].lstrip())
            except ValueError:
                continue
            if isinstance(value, dict):
                found = value
    return found


def _parameters(prompt: list[tuple[str, str]], name: str) -> dict[str, Any]:
    pattern = re.compile(rf"^- {re.escape(name)}(?::[^\n]*)?\n  parameters: (.+)$", re.MULTILINE)
    found: dict[str, Any] = {}
    for _, text in prompt:
        for match in pattern.finditer(text):
            try:
                value = json.loads(match.group(1))
            except ValueError:
                continue
            if isinstance(value, dict):
                found = value
    return found


def _json_answer(prompt: list[tuple[str, str]], asking: str) -> str:
    schema = _last_schema(prompt)
    value = (
        schema_instance(schema)
        if schema is not None
        else {"answer": reply_text(DIRECTIVE.sub("", asking).strip(), 5)}
    )
    if not isinstance(value, dict):
        value = {"answer": value}
    return json.dumps(value, ensure_ascii=False)  # spaced: one stream chunk per word


def shaped_reply(prompt: list[tuple[str, str]]) -> str | None:
    """The shaped answer to the conversation `prompt` (`(role, text)` pairs), if one is asked."""
    users = [text for role, text in prompt if role == "user"]
    if not users:
        return None
    asks = SHAPE.findall(users[-1])
    if asks:
        calls = [value for kind, value in asks if kind == "call"]
        if calls:
            arguments = schema_instance(_parameters(prompt, calls[-1]))
            body = json.dumps({"name": calls[-1], "arguments": arguments}, ensure_ascii=False)
            return f"<tool_call>\n{body}\n</tool_call>"
        if asks[-1][1] == "broken":
            return BROKEN_JSON
        return _json_answer(prompt, users[-1])
    for text in reversed(users[:-1]):
        if any(kind == "json" for kind, _ in SHAPE.findall(text)):
            return _json_answer(prompt, text)
    return None


def shaped_script(prompt: list[tuple[str, str]]) -> Script | None:
    """`shaped_reply` as a script for the turn (None: the turn answers as usual)."""
    reply = shaped_reply(prompt)
    return None if reply is None else Script(reply=reply)
