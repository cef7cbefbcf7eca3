"""Request models of the Responses API (pydantic, used at the edge only).

As for the Chat API (``convert.schemas``): known fields are validated,
unknown ones ignored, so newer SDKs keep working; an ask that cannot be
honoured is refused by the endpoint (``api.responses.refuse_unsupported``).
The objects a response repeats (``tools``, ``text``, ``reasoning``,
``tool_choice``) keep the fields chat2api does not read, so the echo is
what the client sent (``ResponseRequest.echoed``).

Every union is tagged by a function of the raw value (the item's ``type``,
string or list), so a validation error names the field where it is
(``input[2].content[0].text``) instead of each member the value failed to
be. Tags are capitalised: ``api.errors.param_from_loc`` leaves them out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "AdditionalToolsItem",
    "CallOutputItem",
    "ConfigurationUpdateItem",
    "CustomToolCallItem",
    "CustomToolFormat",
    "CustomToolSpec",
    "FilePart",
    "FunctionCallItem",
    "FunctionToolSpec",
    "HostedToolSpec",
    "ImageGenerationToolSpec",
    "ImagePart",
    "InputItem",
    "ItemReference",
    "MessageItem",
    "NamespaceToolSpec",
    "OtherItem",
    "OtherPart",
    "ReasoningConfig",
    "ReasoningItem",
    "ResponseRequest",
    "TextConfig",
    "TextFormatJsonObject",
    "TextFormatJsonSchema",
    "TextFormatText",
    "TextPart",
    "ToolChoice",
    "ToolChoiceAllowed",
    "ToolChoiceCustom",
    "ToolChoiceFunction",
    "ToolChoiceHosted",
    "ToolOutputPart",
    "ToolSpec",
]


class _Lenient(BaseModel):
    """Fields chat2api does not read are dropped."""

    model_config = ConfigDict(extra="ignore")


class _Echoed(BaseModel):
    """Fields chat2api does not read are kept: the response repeats the object."""

    model_config = ConfigDict(extra="allow")


_NOT_AN_OBJECT = object()


def _type_of(value: object) -> object:
    """An object's ``type`` (None when absent), or ``_NOT_AN_OBJECT``."""
    if isinstance(value, Mapping):
        return value.get("type")
    if isinstance(value, BaseModel):
        return getattr(value, "type", None)
    return _NOT_AN_OBJECT


def _by_type(tags: Mapping[str, str], *, other: str | None) -> Callable[[object], str | None]:
    """A tag function: the tag of the object's ``type``; ``other`` for any other object."""

    def tag(value: object) -> str | None:
        kind = _type_of(value)
        if kind is _NOT_AN_OBJECT:
            return None
        return tags.get(kind, other) if isinstance(kind, str) else other

    return tag


def _text_or_list(value: object) -> str | None:
    if isinstance(value, str):
        return "Text"
    return "List" if isinstance(value, list) else None


def _tagged(tag: Callable[[object], str | None], message: str) -> Discriminator:
    """A discriminator whose failure (no tag: the value's kind is not accepted) says ``message``."""
    return Discriminator(tag, custom_error_type="invalid_type", custom_error_message=message)


# --- message content ---------------------------------------------------------


class TextPart(_Lenient):
    """Text of a message (``output_text``: an earlier answer's)."""

    type: Literal["input_text", "output_text", "text"]
    text: StrictStr


class ImagePart(_Lenient):
    """An image: a URL or data URL (``file_id`` is refused when it is loaded)."""

    type: Literal["input_image"]
    image_url: StrictStr | None = None
    file_id: StrictStr | None = None
    detail: StrictStr | None = None


class FilePart(_Lenient):
    """A file: inline (base64 or a data URL) or a URL."""

    type: Literal["input_file"]
    file_data: StrictStr | None = None
    file_url: StrictStr | None = None
    file_id: StrictStr | None = None
    filename: StrictStr | None = None


class OtherPart(_Lenient):
    """A part of a kind chat2api cannot send (``refusal``, audio, …): refused by name."""

    type: Any = None


ContentPart = Annotated[
    Annotated[TextPart, Tag("TextPart")]
    | Annotated[ImagePart, Tag("ImagePart")]
    | Annotated[FilePart, Tag("FilePart")]
    | Annotated[OtherPart, Tag("OtherPart")],
    _tagged(
        _by_type(
            {
                "input_text": "TextPart",
                "output_text": "TextPart",
                "text": "TextPart",
                "input_image": "ImagePart",
                "input_file": "FilePart",
            },
            other="OtherPart",
        ),
        "A content part must be an object with a type.",
    ),
]
Content = Annotated[
    Annotated[StrictStr, Tag("Text")] | Annotated[list[ContentPart], Tag("List")],
    _tagged(_text_or_list, "Message content must be a string or a list of parts."),
]


class ToolOutputPart(_Lenient):
    """A part of a tool's output; its text is what the model reads."""

    type: StrictStr | None = None
    text: StrictStr | None = None


ToolOutput = Annotated[
    Annotated[StrictStr, Tag("Text")] | Annotated[list[ToolOutputPart], Tag("List")],
    _tagged(_text_or_list, "A tool output must be text or a list of parts."),
]


# --- tools -------------------------------------------------------------------


class FunctionToolSpec(_Echoed):
    """A function tool (flat: ``name`` beside ``type``)."""

    type: Literal["function"]
    name: StrictStr
    description: StrictStr | None = None
    parameters: dict[str, Any] | None = None
    strict: StrictBool | None = None


class CustomToolFormat(_Echoed):
    """What a free-form tool's input looks like: any text, or a grammar."""

    type: StrictStr
    syntax: StrictStr | None = None
    definition: StrictStr | None = None


class CustomToolSpec(_Echoed):
    """A free-form tool: its input is raw text (Codex's ``exec`` takes JavaScript)."""

    type: Literal["custom"]
    name: StrictStr
    description: StrictStr | None = None
    format: CustomToolFormat | None = None


class NamespaceToolSpec(_Echoed):
    """A group of tools, offered as ``<namespace>__<name>``."""

    type: Literal["namespace"]
    name: StrictStr = Field(min_length=1)
    description: StrictStr | None = None
    tools: list[ToolSpec]


_IMAGE_SIZE = re.compile(r"\d{2,4}x\d{2,4}")


class ImageGenerationToolSpec(_Echoed):
    """The web app's own image generation. Only ``size`` can be asked for (in the
    prompt); the other options (``quality``, ``background``, …) are echoed, not read."""

    type: Literal["image_generation"]
    size: str = "auto"

    @field_validator("size", mode="before")
    @classmethod
    def _wxh_or_auto(cls, value: object) -> object:
        if value == "auto" or (isinstance(value, str) and _IMAGE_SIZE.fullmatch(value)):
            return value
        raise PydanticCustomError("invalid_size", "size must look like 1024x1024 (or auto).")


class HostedToolSpec(_Echoed):
    """``web_search*`` (the web app's own search) or a tool only OpenAI runs (left out)."""

    type: StrictStr


ToolSpec = Annotated[
    Annotated[FunctionToolSpec, Tag("FunctionTool")]
    | Annotated[CustomToolSpec, Tag("CustomTool")]
    | Annotated[NamespaceToolSpec, Tag("NamespaceTool")]
    | Annotated[ImageGenerationToolSpec, Tag("ImageGenerationTool")]
    | Annotated[HostedToolSpec, Tag("HostedTool")],
    _tagged(
        _by_type(
            {
                "function": "FunctionTool",
                "custom": "CustomTool",
                "namespace": "NamespaceTool",
                "image_generation": "ImageGenerationTool",
            },
            other="HostedTool",
        ),
        "Each tool must be an object with a type.",
    ),
]
NamespaceToolSpec.model_rebuild()


class ToolChoiceFunction(_Echoed):
    type: Literal["function"]
    name: StrictStr
    namespace: StrictStr | None = None


class ToolChoiceCustom(_Echoed):
    type: Literal["custom"]
    name: StrictStr


class ToolChoiceAllowed(_Echoed):
    type: Literal["allowed_tools"]
    mode: Literal["none", "auto", "required"] = "auto"
    tools: list[dict[str, Any]] | None = None


class ToolChoiceHosted(_Echoed):
    """A hosted tool by type: only ``web_search*`` and ``image_generation`` can be honoured."""

    type: StrictStr


def _choice_tag(value: object) -> str | None:
    if isinstance(value, str):
        return "Mode"
    kind = _type_of(value)
    if kind is _NOT_AN_OBJECT or not isinstance(kind, str):
        return None
    tags = {"function": "Function", "custom": "Custom", "allowed_tools": "Allowed"}
    return tags.get(kind, "Hosted")


ToolChoice = Annotated[
    Annotated[Literal["none", "auto", "required"], Tag("Mode")]
    | Annotated[ToolChoiceFunction, Tag("Function")]
    | Annotated[ToolChoiceCustom, Tag("Custom")]
    | Annotated[ToolChoiceAllowed, Tag("Allowed")]
    | Annotated[ToolChoiceHosted, Tag("Hosted")],
    _tagged(
        _choice_tag, "tool_choice must be 'none', 'auto', 'required' or an object with a type."
    ),
]


# --- input items -------------------------------------------------------------


class MessageItem(_Lenient):
    """A message (``type`` may be left out); ``developer`` is a system turn."""

    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: Content = ""


class FunctionCallItem(_Lenient):
    """An earlier call of a function tool."""

    type: Literal["function_call"]
    call_id: StrictStr = ""
    name: StrictStr = ""
    namespace: StrictStr | None = None
    arguments: StrictStr = "{}"


class CustomToolCallItem(_Lenient):
    """An earlier call of a free-form tool."""

    type: Literal["custom_tool_call"]
    call_id: StrictStr = ""
    name: StrictStr = ""
    namespace: StrictStr | None = None
    input: StrictStr = ""


class CallOutputItem(_Lenient):
    """What a call returned (``function_call_output`` or ``custom_tool_call_output``)."""

    type: Literal["function_call_output", "custom_tool_call_output"]
    call_id: StrictStr = ""
    output: ToolOutput = ""


class AdditionalToolsItem(_Lenient):
    """Tools sent among the input, as the Codex CLI does."""

    type: Literal["additional_tools"]
    tools: list[ToolSpec] | None = None


class ReasoningItem(_Lenient):
    """Earlier reasoning: nothing the model reads."""

    type: Literal["reasoning"]


class ConfigurationUpdateItem(_Lenient):
    """Per-turn settings sent among the input (Codex): nothing the model reads."""

    type: Literal["configuration_update"]


class ItemReference(_Lenient):
    """An item of an earlier response by id: chat2api keeps none to look up (refused)."""

    type: Literal["item_reference"]
    id: StrictStr | None = None


class OtherItem(_Lenient):
    """An item of a kind chat2api cannot send (computer calls, MCP, …): refused by name."""

    type: Any = None


_ITEM_TAGS = _by_type(
    {
        "message": "Message",
        "function_call": "FunctionCall",
        "custom_tool_call": "CustomToolCall",
        "function_call_output": "CallOutput",
        "custom_tool_call_output": "CallOutput",
        "additional_tools": "AdditionalTools",
        "reasoning": "Reasoning",
        "configuration_update": "ConfigurationUpdate",
        "item_reference": "ItemReference",
    },
    other="OtherItem",
)


def _item_tag(value: object) -> str | None:
    if isinstance(value, Mapping) and "type" not in value:
        return "Message"  # the easy form: a role and content
    return _ITEM_TAGS(value)


InputItem = Annotated[
    Annotated[MessageItem, Tag("Message")]
    | Annotated[FunctionCallItem, Tag("FunctionCall")]
    | Annotated[CustomToolCallItem, Tag("CustomToolCall")]
    | Annotated[CallOutputItem, Tag("CallOutput")]
    | Annotated[AdditionalToolsItem, Tag("AdditionalTools")]
    | Annotated[ReasoningItem, Tag("Reasoning")]
    | Annotated[ConfigurationUpdateItem, Tag("ConfigurationUpdate")]
    | Annotated[ItemReference, Tag("ItemReference")]
    | Annotated[OtherItem, Tag("OtherItem")],
    _tagged(
        _item_tag,
        "Each input item must be an object.",
    ),
]
Input = Annotated[
    Annotated[StrictStr, Tag("Text")]
    | Annotated[list[InputItem], Field(min_length=1), Tag("List")],
    _tagged(_text_or_list, "input must be a string or a non-empty list of items."),
]


# --- output format and reasoning ---------------------------------------------


class TextFormatText(_Echoed):
    type: Literal["text"]


class TextFormatJsonObject(_Echoed):
    type: Literal["json_object"]


class TextFormatJsonSchema(_Echoed):
    """A JSON schema the answer must fit (inline, unlike Chat's ``json_schema`` wrapper)."""

    type: Literal["json_schema"]
    name: StrictStr
    schema_: dict[str, Any] = Field(default_factory=lambda: {"type": "object"}, alias="schema")
    description: StrictStr | None = None
    strict: StrictBool | None = None


TextFormat = Annotated[
    Annotated[TextFormatText, Tag("Text")]
    | Annotated[TextFormatJsonObject, Tag("JsonObject")]
    | Annotated[TextFormatJsonSchema, Tag("JsonSchema")],
    _tagged(
        _by_type(
            {"text": "Text", "json_object": "JsonObject", "json_schema": "JsonSchema"},
            other=None,
        ),
        "text.format.type must be 'text', 'json_object' or 'json_schema'.",
    ),
]


class TextConfig(_Echoed):
    format: TextFormat | None = None


class ReasoningConfig(_Echoed):
    """``effort`` becomes the web app's thinking effort; ``summary`` is echoed."""

    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None


# --- the request -------------------------------------------------------------

# What the response object repeats of the request (``convert.responses.ResponseBuilder``).
_ECHOED = frozenset(
    {
        "instructions",
        "max_output_tokens",
        "metadata",
        "parallel_tool_calls",
        "previous_response_id",
        "reasoning",
        "store",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_p",
        "user",
    }
)


class ResponseRequest(_Lenient):
    """``POST /v1/responses`` (docs/api.md lists what each field does)."""

    model: StrictStr | None = Field(None, min_length=1, max_length=200)  # None: DEFAULT_MODEL
    input: Input
    instructions: StrictStr | None = None
    stream: StrictBool | None = None
    store: StrictBool | None = None  # None: true
    previous_response_id: StrictStr | None = None
    max_output_tokens: StrictInt | None = Field(None, ge=1)
    tools: list[ToolSpec] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: StrictBool | None = None  # None: true
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    # Ignored (the web app samples its own way), validated so a typo is still caught; echoed.
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    truncation: Literal["auto", "disabled"] | None = None
    metadata: dict[str, Any] | None = None
    user: StrictStr | None = None
    # Asks that cannot be honoured are refused when made (``api.responses.refuse_unsupported``).
    include: list[StrictStr] | None = None
    top_logprobs: StrictInt | None = Field(None, ge=0, le=20)
    background: StrictBool | None = None

    @model_validator(mode="before")
    @classmethod
    def _null_input_is_missing(cls, data: Any) -> Any:
        if isinstance(data, dict) and "input" in data and data["input"] is None:
            return {key: value for key, value in data.items() if key != "input"}
        return data

    @property
    def stored(self) -> bool:
        """``store``: true unless sent false."""
        return self.store is not False

    @property
    def parallel(self) -> bool:
        """``parallel_tool_calls``: true unless sent false."""
        return self.parallel_tool_calls is not False

    @property
    def reasoning_effort(self) -> str | None:
        return self.reasoning.effort if self.reasoning is not None else None

    def echoed(self, model: str) -> dict[str, Any]:
        """The fields the response object repeats, as sent, and the ``model`` answering."""
        out = self.model_dump(include=set(_ECHOED), exclude_unset=True, by_alias=True)
        out["model"] = model
        return out
