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

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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
_SIZE = re.compile(r"\d{2,4}x\d{2,4}")


def custom_parameters(tool: Mapping[str, Any]) -> dict[str, Any]:
    """The one-string-argument schema a free-form tool is offered with."""
    about = "The tool's raw input text, exactly as the tool takes it (not JSON-encoded)."
    fmt = tool.get("format")
    if isinstance(fmt, Mapping) and fmt.get("type") == "grammar":
        about += f" It must match this {fmt.get('syntax', '')} grammar: {fmt.get('definition', '')}"
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
    """The client's tools as chat-completions function tools, and the way back."""

    functions: list[dict[str, Any]] = field(default_factory=list)
    offered: dict[str, OfferedTool] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)  # hosted tool types, by type
    search: bool = False  # a web_search tool: the upstream searches by itself
    image: dict[str, Any] | None = None  # the image_generation tool, as sent

    def add_tools(self, tools: object, param: str) -> None:
        """Add a ``tools`` list (the request's, or an ``additional_tools`` item's)."""
        if tools is None:
            return
        if not isinstance(tools, list):
            raise InvalidRequest("tools must be a list.", param=param)
        for i, tool in enumerate(tools):
            self._add(tool, f"{param}[{i}]", None)

    def _add(self, tool: object, where: str, namespace: str | None) -> None:
        kind = tool.get("type") if isinstance(tool, Mapping) else None
        if not isinstance(tool, Mapping) or not isinstance(kind, str):
            raise InvalidRequest("Each tool must be an object with a type.", param=f"{where}.type")
        if kind == "namespace" and namespace is None:
            name = tool.get("name")
            if not isinstance(name, str) or not name:
                raise InvalidRequest("A namespace tool needs a name.", param=f"{where}.name")
            inner = tool.get("tools")
            if not isinstance(inner, list):
                raise InvalidRequest("A namespace tool needs tools.", param=f"{where}.tools")
            for j, member in enumerate(inner):
                self._add(member, f"{where}.tools[{j}]", name)
            return
        if kind.startswith("web_search"):
            self.search = True  # the web app's own search (system hint "search")
            return
        if kind == "image_generation":
            size = tool.get("size", "auto")
            if size != "auto" and not (isinstance(size, str) and _SIZE.fullmatch(size)):
                raise InvalidRequest(
                    "size must look like 1024x1024 (or auto).", param=f"{where}.size"
                )
            self.image = dict(tool)  # the web app's own image generation
            return
        if kind not in ("function", "custom"):
            if kind not in self.left_out:
                self.left_out.append(kind)
            return
        name = tool.get("name")
        if not isinstance(name, str):
            raise InvalidRequest("A tool needs a name.", param=f"{where}.name")
        offered = name if namespace in (None, DEFAULT_NAMESPACE) else namespace + _SEPARATOR + name
        function: dict[str, Any] = {"name": offered}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        if kind == "custom":
            function["parameters"] = custom_parameters(tool)
        else:
            function.update({k: tool[k] for k in ("parameters", "strict") if k in tool})
        if offered in self.offered:
            return  # the same tool sent twice (tools and additional_tools): offered once
        self.offered[offered] = OfferedTool(kind, name, namespace)  # type: ignore[arg-type]
        self.functions.append({"type": "function", "function": function})

    def offered_name(self, name: str, namespace: object) -> str:
        """The name the model knows a call of the client's history by."""
        if isinstance(namespace, str) and namespace and namespace != DEFAULT_NAMESPACE:
            return namespace + _SEPARATOR + name
        return name

    def back(self, offered: str) -> OfferedTool:
        """The client's tool behind an offered name (a plain function when unknown)."""
        return self.offered.get(offered) or OfferedTool("function", offered)

    def check_choice(self, tool_choice: object) -> object:
        """``tool_choice`` in the chat-completions shape; naming a left-out tool is a 400."""
        if not isinstance(tool_choice, Mapping):
            return tool_choice
        kind = tool_choice.get("type")
        if kind == "function":
            name = tool_choice.get("name")
            if isinstance(name, str):
                name = self.offered_name(name, tool_choice.get("namespace"))
            return {"type": "function", "function": {"name": name}}
        if kind == "custom":
            return {"type": "function", "function": {"name": tool_choice.get("name")}}
        if kind in ("allowed_tools", None):
            return tool_choice.get("mode", "auto") if kind else tool_choice
        if isinstance(kind, str) and kind.startswith("web_search") and self.search:
            return "auto"  # searching is the upstream's own decision, asked by the hint
        if kind == "image_generation" and self.image is not None:
            return "auto"  # the picture is asked by the picture_v2 hint (image_forced)
        raise InvalidRequest(
            f"tool_choice asks for the {kind!r} tool, which chat2api cannot run: only "
            "function and custom tools (also inside namespaces) are available.",
            param="tool_choice",
            code="unsupported_tool",
        )

    def image_forced(self, tool_choice: object) -> bool:
        """The request demands a picture: ``tool_choice`` names ``image_generation``,
        or is ``"required"`` with it the only tool (not a function, not search)."""
        if self.image is None:
            return False
        if isinstance(tool_choice, Mapping):
            return tool_choice.get("type") == "image_generation"
        return tool_choice == "required" and not self.functions and not self.search

    def system_hints(self, tool_choice: object) -> list[str]:
        """The web app's hints: ``picture_v2`` when a picture is demanded, else ``search``
        with a web_search tool the choice does not rule out; the upstream decides the rest."""
        if self.image_forced(tool_choice):
            return ["picture_v2"]
        return ["search"] if self.search and self.check_choice(tool_choice) != "none" else []

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


def history_call(table: ToolTable, item: Mapping[str, Any]) -> dict[str, Any]:
    """A ``function_call`` / ``custom_tool_call`` input item as a chat-completions tool call."""
    import json

    name = table.offered_name(str(item.get("name", "")), item.get("namespace"))
    if item.get("type") == "custom_tool_call":
        arguments = json.dumps({"input": str(item.get("input", ""))}, ensure_ascii=False)
    else:
        arguments = item.get("arguments", "{}")
    return {
        "id": str(item.get("call_id", "")),
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def output_text_of(output: object) -> str | None:
    """A tool output's text: a string, or the text parts of a list (``input_text`` …)."""
    if isinstance(output, str):
        return output
    if isinstance(output, Sequence):
        texts = [
            p["text"] for p in output if isinstance(p, Mapping) and isinstance(p.get("text"), str)
        ]
        return "\n".join(texts)
    return None
