"""Typed events produced by the upstream stream decoder.

The decoder (``protocol.stream``) turns the ChatGPT SSE stream, in either the
legacy snapshot format or the delta-encoding v1 format, into this one small
vocabulary. Everything downstream (OpenAI chunks, non-stream completions,
usage) is computed from these events and nothing else, so streaming and
non-streaming answers can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FinishType = Literal["stop", "max_tokens", "interrupted"]


@dataclass(frozen=True, slots=True)
class TextDelta:
    """New visible answer text, to append to what came before."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """New reasoning (thoughts summary) text, kept apart from the answer."""

    text: str


@dataclass(frozen=True, slots=True)
class Metadata:
    """Facts about the turn as soon as they are known; any field may be None."""

    conversation_id: str | None = None
    message_id: str | None = None
    model_slug: str | None = None


@dataclass(frozen=True, slots=True)
class Finished:
    """The answer message finished (``finished_successfully`` with ``end_turn``)."""

    finish_type: FinishType = "stop"


@dataclass(frozen=True, slots=True)
class Moderated:
    """The upstream flagged or blocked the turn."""

    blocked: bool


@dataclass(frozen=True, slots=True)
class StreamFailed:
    """The upstream reported an error inside the stream."""

    message: str
    code: str | None = None


@dataclass(frozen=True, slots=True)
class CodeRun:
    """Code the model sent to a tool (``python`` …), once its message finished."""

    language: str
    code: str


@dataclass(frozen=True, slots=True)
class ExecutionOutput:
    """What running that code printed, once its message finished."""

    text: str


@dataclass(frozen=True, slots=True)
class ImageGenerated:
    """An image the upstream generated (DALL·E tool flow or image generation).

    ``asset_pointer`` is ``file-service://<id>`` or ``sediment://<id>``;
    ``pending`` means the generation was still running when the stream ended
    (asynchronous image generation): the caller polls the conversation.
    ``prompt`` is what the model asked the image tool to draw, when the
    stream said so.
    """

    asset_pointer: str
    width: int | None = None
    height: int | None = None
    pending: bool = False
    message_id: str | None = None
    prompt: str | None = None


@dataclass(frozen=True, slots=True)
class Citation:
    """A source the answer cites."""

    url: str
    title: str | None = None


Event = (
    TextDelta
    | ReasoningDelta
    | Metadata
    | Finished
    | Moderated
    | StreamFailed
    | CodeRun
    | ExecutionOutput
    | ImageGenerated
    | Citation
)
