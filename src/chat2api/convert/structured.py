"""Structured output: ``response_format`` (Chat) and ``text.format`` (Responses) (pure).

Handled the way function calls are (``convert.tools``): the format goes to
the model in a short instruction (``format_instructions``); the answer is
read with the tolerant JSON reader (``convert.tools.repair``), checked against the
schema with ``jsonschema``, and asked for once more (``correction_turns``)
when it does not fit. If the second answer does not fit either, the client
gets ``ModelOutputError`` (``invalid_structured_output``), never prose
presented as JSON.

Streaming: a stream cannot take back what it sent, so ``StructuredAnswer``
streams the first attempt as it comes only when it opens like a JSON
object (``{``); anything else (a code fence, a sentence first) is held
until the attempt ends and can be repaired or corrected. A streamed attempt
that then fails its check ends the stream with the error event.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from chat2api.convert.tools.repair import repair_arguments
from chat2api.errors import InvalidRequest, ModelOutputError
from chat2api.values import PromptTurn

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

__all__ = [
    "OutputFormat",
    "StructuredAnswer",
    "chat_response_format",
    "format_instructions",
    "json_schema_format",
]

_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_MAX_MESSAGE = 300
SCHEMA_LABEL = "JSON Schema:"  # the simulator's `#sim:json` finds the schema after it


@dataclass(frozen=True, eq=False)
class OutputFormat:
    """What the answer must be: any JSON object, or one fitting ``schema``."""

    kind: Literal["json_object", "json_schema"]
    name: str = "response"
    schema: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    strict: bool = False

    @cached_property
    def validator(self) -> Validator:
        """A validator for ``schema`` (the dialect its ``$schema`` names, else 2020-12)."""
        from jsonschema import Draft202012Validator, validators

        cls = validators.validator_for(self.schema, default=Draft202012Validator)
        validator: Validator = cls(self.schema)
        return validator

    def echo(self) -> dict[str, Any]:
        """The Responses ``text.format`` object for this format."""
        if self.kind == "json_object":
            return {"type": "json_object"}
        out: dict[str, Any] = {"type": "json_schema", "name": self.name, "schema": self.schema}
        if self.description:
            out["description"] = self.description
        out["strict"] = self.strict
        return out


def _bad(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _json_schema(spec: Mapping[str, Any], param: str) -> OutputFormat:
    return json_schema_format(
        spec.get("name"),
        spec.get("schema", {"type": "object"}),
        spec.get("description"),
        spec.get("strict"),
        param,
    )


def json_schema_format(
    name: object, schema: object, description: object, strict: object, param: str
) -> OutputFormat:
    """A ``json_schema`` format from its fields; ``param`` is where they are in the request."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _bad(
            f"{param}.name must be a string of 1-64 letters, digits, '_' or '-'.", f"{param}.name"
        )
    if not isinstance(schema, Mapping):
        raise _bad(f"{param}.schema must be a JSON schema object.", f"{param}.schema")
    description = description or ""
    if not isinstance(description, str):
        raise _bad(f"{param}.description must be a string.", f"{param}.description")
    if strict is not None and not isinstance(strict, bool):
        raise _bad(f"{param}.strict must be a boolean.", f"{param}.strict")
    # Size and meta-schema checks: ``convert.tools.require_schema``, awaited by the endpoint.
    return OutputFormat("json_schema", name, dict(schema), description, bool(strict))


def chat_response_format(raw: object) -> OutputFormat | None:
    """The Chat Completions ``response_format``; None for plain text."""
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, Mapping) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return OutputFormat("json_object")
    if kind == "json_schema":
        assert isinstance(raw, Mapping)
        spec = raw.get("json_schema")
        if not isinstance(spec, Mapping):
            raise _bad(
                "response_format.json_schema is required for type 'json_schema'.",
                "response_format.json_schema",
            )
        return _json_schema(spec, "response_format.json_schema")
    raise _bad(
        "response_format.type must be 'text', 'json_object' or 'json_schema'.",
        "response_format.type",
    )


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def format_instructions(fmt: OutputFormat) -> str:
    """The instruction prepended to a request that asks for structured output."""
    lines = [
        "# Response format",
        "Answer with one JSON object and nothing else: no prose, no code fence.",
    ]
    if fmt.kind == "json_schema":
        about = f" ({fmt.description})" if fmt.description else ""
        lines.append(f"The object, named {fmt.name}{about}, must validate against this")
        lines.append(f"{SCHEMA_LABEL} {_compact(fmt.schema)}")
    return "\n".join(lines)


def check_answer(fmt: OutputFormat, raw: str) -> tuple[str | None, str | None]:
    """``(the answer as JSON text, None)`` when ``raw`` fits ``fmt``, else ``(None, why)``.

    The text is ``raw`` itself (stripped) when it is valid JSON, else its
    repaired form; a sentence around the object is dropped.
    """
    text = raw.strip()
    try:
        value = json.loads(text)
    except ValueError:
        repaired = repair_arguments(text)
        if repaired is None:
            start, end = text.find("{"), text.rfind("}")
            repaired = repair_arguments(text[start : end + 1]) if 0 <= start < end else None
        if repaired is None:
            return None, "the answer is not a JSON object"
        text, value = repaired, json.loads(repaired)
    if not isinstance(value, dict):
        return None, "the answer is JSON but not an object"
    if fmt.kind == "json_schema":
        from jsonschema.exceptions import best_match

        error = best_match(fmt.validator.iter_errors(value))
        if error is not None:
            where = "".join(
                f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path
            )
            return None, f"answer{where}: {error.message}"[:_MAX_MESSAGE]
    return text, None


class StructuredAnswer:
    """Checks, and once corrects, the answer of a request with structured output.

    ``feed`` returns the text the client may see now, ``close`` the rest at
    the end of an attempt; after ``close``, ``wants_correction`` says the
    caller should send ``correction_turns`` and feed the next attempt.
    """

    def __init__(self, fmt: OutputFormat, *, live: bool) -> None:
        self.format = fmt
        self._live = live  # a stream: an attempt that opens with "{" goes out as it comes
        self._streaming: bool | None = None  # decided by the attempt's first character
        self._text = ""
        self.reason: str | None = None  # why the last attempt did not fit
        self.corrected = False

    @property
    def wants_correction(self) -> bool:
        """The last attempt did not fit and the one correction round is unused."""
        return self.reason is not None and not self.corrected

    def feed(self, text: str) -> str:
        """The part of ``text`` the client sees now."""
        self._text += text
        if self._streaming is None:
            head = self._text.lstrip()
            if not head:
                return ""
            self._streaming = self._live and not self.corrected and head.startswith("{")
            return self._text if self._streaming else ""
        return text if self._streaming else ""

    def close(self) -> str:
        """The rest of the attempt's text, once it is checked; raises when it cannot be used.

        Raises ``ModelOutputError`` when the attempt does not fit and cannot
        be corrected: the correction round was used, or the attempt already
        went out.
        """
        fitted, self.reason = check_answer(self.format, self._text)
        if fitted is not None and self._streaming and fitted != self._text.strip():
            # It fits only once repaired, and the client already has it as sent.
            fitted, self.reason = None, "the answer needed repairs to be JSON"
        if fitted is not None:
            return "" if self._streaming else fitted
        if self._streaming or self.corrected:
            raise ModelOutputError(
                f"The model's answer does not match the requested response format "
                f"({self.reason}), even after it was asked to correct it."
                if self.corrected
                else f"The model's answer does not match the requested response format "
                f"({self.reason}); it was already streamed, so it could not be corrected.",
                code="invalid_structured_output",
            )
        return ""

    def correction_turns(self) -> list[PromptTurn]:
        """The model's own answer and the request to write it again, correctly."""
        lines = [
            f"Your answer could not be used: {self.reason}.",
            "Answer again with only the JSON object, no prose and no code fence.",
        ]
        if self.format.kind == "json_schema":
            lines.append(f"{SCHEMA_LABEL} {_compact(self.format.schema)}")
        turns: list[PromptTurn] = [
            PromptTurn("assistant", self._text),
            PromptTurn("user", "\n".join(lines)),
        ]
        self.corrected = True
        self.reason = None
        self._text = ""
        self._streaming = None
        return turns
