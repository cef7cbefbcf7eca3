"""Request schemas of the OpenAI surface (pydantic, used at the edge only).

Known fields are validated; unknown fields are ignored, as OpenAI-compatible
servers are expected to do, so newer SDKs keep working.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

MAX_STOP = 4  # as OpenAI


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextPart(_Lenient):
    type: Literal["text"]
    text: str


class OtherPart(BaseModel):
    """A non-text content part (image, file, …), kept whole for ``convert.attachments``."""

    model_config = ConfigDict(extra="allow")
    type: str


class FunctionCall(_Lenient):
    name: str
    arguments: str = ""


class ToolCall(_Lenient):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart | OtherPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    function_call: FunctionCall | None = None  # legacy assistant call (before tool_calls)

    @model_validator(mode="after")
    def _content_present(self) -> ChatMessage:
        if self.content is None and self.role in ("system", "developer", "user"):
            raise ValueError(f"content is required for role {self.role!r}")
        return self


class StreamOptions(_Lenient):
    include_usage: StrictBool = False


class ChatCompletionRequest(_Lenient):
    model: str | None = Field(None, min_length=1, max_length=200)  # None: DEFAULT_MODEL
    messages: list[ChatMessage] = Field(min_length=1)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1, le=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    stop: str | list[str] | None = None
    user: str | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: StrictBool = True
    functions: list[dict[str, Any]] | None = None  # legacy, mapped onto tools
    function_call: str | dict[str, Any] | None = None  # legacy, mapped onto tool_choice
    response_format: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None  # the web app's own search
    # Asks that cannot be honoured are refused when made (``api.chat.refuse_unsupported``).
    logprobs: StrictBool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    logit_bias: dict[str, float] | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    seed: int | None = None
    # chat2api's extension: continue an upstream conversation kept in history
    # (the ids come back as extra fields of answers when HISTORY_DISABLED=false).
    conversation_id: str | None = Field(None, min_length=1, max_length=100)
    message_id: str | None = Field(None, min_length=1, max_length=100)

    @field_validator("stop")
    @classmethod
    def _at_most_four(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences are allowed, got {len(value)}")
        return value

    @property
    def stop_sequences(self) -> list[str]:
        """``stop`` as a list (one string is one sequence)."""
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def token_limit(self) -> int | None:
        """``max_completion_tokens`` wins over the older ``max_tokens``."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)
