"""Responses API tool shapes ⇄ the function tools the engine offers (pure).

The Responses API has more tool shapes than chat completions, and agents
such as the Codex CLI use them all:

* ``function``: as in chat completions, flat (``name`` beside ``type``);
* ``custom``: a free-form tool whose input is raw text (Codex's ``exec``
  takes JavaScript); offered to the model as a function with one string
  argument ``input``, answered as a ``custom_tool_call`` item;
* ``namespace``: a group of function and custom tools (``{"type":
  "namespace", "name", "tools": [...]}``); its tools are offered as
  ``<namespace>__<name>`` and answered with ``name`` and ``namespace`` apart
  (the namespace ``functions`` is the default one: its tools keep their
  bare names);
* ``web_search`` (any version) is the web app's own search: the
  conversation is sent with the ``search`` system hint, and the sources the
  answer cites come back as ``url_citation`` annotations;
* ``image_generation`` is the web app's own image generation: the model may
  draw when it sees fit (the upstream decides), and a ``tool_choice`` that
  demands a picture sends the conversation with the ``picture_v2`` system
  hint (``image_forced``); the image comes back as an
  ``image_generation_call`` item. Of its options only ``size`` can be asked
  for (in the prompt, as ``/v1/images/generations`` does); the rest is
  ignored (docs/tools.md);
* other hosted tools (``file_search``, ``code_interpreter``, …) run on
  OpenAI's side, which chat2api cannot do: they are left out, named in the
  ``X-Chat2API-Warning`` header, unless ``tool_choice`` demands one (then a
  400, ``unsupported_tool``).

Tools may come in the request's ``tools`` or, as Codex sends them, in an
``additional_tools`` input item. ``ToolTable`` remembers how each offered
name maps back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from chat2api.convert.response_schemas import (
    CustomToolFormat,
    CustomToolSpec,
    FunctionToolSpec,
    ImageGenerationToolSpec,
    NamespaceToolSpec,
    ToolChoice,
    ToolChoiceAllowed,
    ToolChoiceCustom,
    ToolChoiceFunction,
    ToolSpec,
)
from chat2api.convert.tools.schema import FunctionTool, check_tools, require_valid_tools
from chat2api.errors import InvalidRequest
from chat2api.values import PromptTurn

__all__ = [
    "DEFAULT_NAMESPACE",
    "OfferedTool",
    "ToolTable",
    "custom_parameters",
    "with_image_size",
]

DEFAULT_NAMESPACE = "functions"
_SEPARATOR = "__"


def custom_parameters(fmt: CustomToolFormat | None) -> dict[str, Any]:
    """The one-string-argument schema a free-form tool (of input ``fmt``) is offered with."""
    about = "The tool's raw input text, exactly as the tool takes it (not JSON-encoded)."
    if fmt is not None and fmt.type == "grammar":
        about += f" It must match this {fmt.syntax or ''} grammar: {fmt.definition or ''}"
    return {
        "type": "object",
        "properties": {"input": {"type": "string", "description": about}},
        "required": ["input"],
        "additionalProperties": False,
    }


@dataclass(frozen=True, slots=True)
class OfferedTool:
    """How a name the model calls maps back to the client's tool."""

    kind: Literal["function", "custom"]
    name: str
    namespace: str | None = None


@dataclass
class ToolTable:
    """The client's tools as the functions the engine offers, and the way back."""

    functions: list[FunctionTool] = field(default_factory=list)
    places: list[str] = field(default_factory=list)  # where each function was declared
    offered: dict[str, OfferedTool] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)  # hosted tool types, by type
    search: bool = False  # a web_search tool: the upstream searches by itself
    image: dict[str, Any] | None = None  # the image_generation tool, as sent (for its size)

    def add_tools(self, tools: Sequence[ToolSpec] | None, param: str) -> None:
        """Add a ``tools`` list (the request's, or an ``additional_tools`` item's)."""
        for i, tool in enumerate(tools or ()):
            self._add(tool, f"{param}[{i}]", None)

    def _add(self, tool: ToolSpec, where: str, namespace: str | None) -> None:
        kind = tool.type
        if isinstance(tool, NamespaceToolSpec) and namespace is None:
            for j, member in enumerate(tool.tools):
                self._add(member, f"{where}.tools[{j}]", tool.name)
            return
        if kind.startswith("web_search"):
            self.search = True  # the web app's own search (system hint "search")
            return
        if isinstance(tool, ImageGenerationToolSpec):
            self.image = tool.model_dump(exclude_unset=True)  # the web app's image generation
            return
        if not isinstance(tool, FunctionToolSpec | CustomToolSpec):
            if kind not in self.left_out:
                self.left_out.append(kind)
            return
        name = tool.name
        offered = self.offered_name(name, namespace)
        if offered in self.offered:
            return  # the same tool sent twice (tools and additional_tools): offered once
        parameters: dict[str, Any] | None
        if isinstance(tool, CustomToolSpec):
            back = OfferedTool("custom", name, namespace)
            parameters, strict = custom_parameters(tool.format), False
        else:
            back = OfferedTool("function", name, namespace)
            parameters, strict = tool.parameters, bool(tool.strict)
        description = tool.description or ""
        if parameters is None:
            function = FunctionTool(offered, description, strict=strict)
        else:
            function = FunctionTool(offered, description, dict(parameters), strict)
        self.offered[offered] = back
        self.functions.append(function)
        self.places.append(where)

    def check(self) -> None:
        """Refuse bad names and oversized schemas (``convert.tools.check_tools``)."""
        check_tools(self.functions, self.places)

    async def require_valid(self) -> None:
        """Refuse a parameter schema that is not a valid JSON schema (in a thread)."""
        await require_valid_tools(self.functions, self.places)

    def offered_name(self, name: str, namespace: str | None) -> str:
        """The name the model knows a call of the client's history by."""
        if namespace and namespace != DEFAULT_NAMESPACE:
            return namespace + _SEPARATOR + name
        return name

    def back(self, offered: str) -> OfferedTool:
        """The client's tool behind an offered name (a plain function when unknown)."""
        return self.offered.get(offered) or OfferedTool("function", offered)

    def choice(self, tool_choice: ToolChoice | None) -> str:
        """``"none"``, ``"auto"``, ``"required"`` or the offered name the model must call.

        Naming a tool chat2api left out is a 400 (``unsupported_tool``); a
        named function not among the tools, once there are any, too.
        """
        if tool_choice is None:
            return "auto"
        if isinstance(tool_choice, str):
            return tool_choice
        if isinstance(tool_choice, ToolChoiceAllowed):
            return tool_choice.mode
        if isinstance(tool_choice, ToolChoiceFunction | ToolChoiceCustom):
            namespace = (
                tool_choice.namespace if isinstance(tool_choice, ToolChoiceFunction) else None
            )
            name = self.offered_name(tool_choice.name, namespace)
            if self.functions and name not in self.offered:
                raise InvalidRequest(
                    f"tool_choice names {name!r}, which is not in tools.", param="tool_choice.name"
                )
            return name
        kind = tool_choice.type
        if kind.startswith("web_search") and self.search:
            return "auto"  # searching is the upstream's own decision, asked by the hint
        if kind == "image_generation" and self.image is not None:
            return "auto"  # the picture is asked by the picture_v2 hint (image_forced)
        raise InvalidRequest(
            f"tool_choice asks for the {kind!r} tool, which chat2api cannot run: only "
            "function and custom tools (also inside namespaces) are available.",
            param="tool_choice",
            code="unsupported_tool",
        )

    def image_forced(self, tool_choice: ToolChoice | None) -> bool:
        """The request demands a picture: ``tool_choice`` names ``image_generation``,
        or is ``"required"`` with it the only tool (not a function, not search)."""
        if self.image is None or tool_choice is None:
            return False
        if isinstance(tool_choice, str):
            return tool_choice == "required" and not self.functions and not self.search
        return tool_choice.type == "image_generation"

    @property
    def image_size(self) -> str | None:
        """The ``WxH`` the image_generation tool asks for, or None for ``auto``."""
        size = (self.image or {}).get("size", "auto")
        return None if size == "auto" else str(size)

    def warning(self) -> str | None:
        """The ``X-Chat2API-Warning`` value when hosted tools were left out."""
        if not self.left_out:
            return None
        return "hosted tools left out (chat2api cannot run them): " + ", ".join(self.left_out)


def with_image_size(turns: Sequence[PromptTurn], size: str | None) -> list[PromptTurn]:
    """``turns`` with ``size=WxH`` after the last user turn's text, as the model reads a size."""
    out = list(turns)
    if size is None:
        return out
    for i in range(len(out) - 1, -1, -1):
        if out[i].role == "user":
            out[i] = out[i]._replace(text=f"{out[i].text} size={size}")
            break
    return out


def call_item_fields(table: ToolTable, offered: str, arguments: str) -> dict[str, Any]:
    """The Responses output item fields of a call to ``offered`` with JSON ``arguments``."""
    import json

    tool = table.back(offered)
    if tool.kind == "custom":
        try:
            value = json.loads(arguments)
        except ValueError:
            value = {}
        text = value.get("input") if isinstance(value, dict) else None
        return {"type": "custom_tool_call", "name": tool.name, "input": str(text or "")}
    out: dict[str, Any] = {"type": "function_call", "name": tool.name, "arguments": arguments}
    if tool.namespace not in (None, DEFAULT_NAMESPACE):
        out["namespace"] = tool.namespace
    return out
