"""``POST /v1/chat/completions`` and ``GET /v1/models``."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chat2api.answering import (
    AnswerShape,
    Ask,
    account_fingerprint,
    gather_attachments,
    start_answer,
)
from chat2api.api.auth import account_source
from chat2api.api.bindings import find_continuation, owner_of, save_binding
from chat2api.api.errors import parse_request
from chat2api.api.requestlog import note, note_error
from chat2api.api.routing import public_base
from chat2api.api.sse import SSE_HEADERS, sse_data
from chat2api.api.streaming import EventStream
from chat2api.convert.completion import Answer
from chat2api.convert.messages import prompt_turns
from chat2api.convert.models import listed_models, model_card, resolve_model
from chat2api.convert.schemas import ChatCompletionRequest, ChatMessage, FunctionCall, ToolCall
from chat2api.convert.structured import chat_response_format, format_instructions
from chat2api.convert.tools import ToolCalls, parse_tools, require_schema, resolve_tool_choice
from chat2api.errors import (
    Chat2APIError,
    InvalidRequest,
    ModelNotFound,
    StoreUnavailable,
    UnsupportedParameter,
)
from chat2api.state import AppState
from chat2api.values import PromptTurn

log = logging.getLogger(__name__)

SLUG_HEADER = "X-Chat2API-Model-Slug"


def refuse_unsupported(chat: ChatCompletionRequest) -> None:
    """Refuse fields whose explicit ask cannot be honoured (docs/api.md lists every field)."""
    if chat.logprobs:
        raise UnsupportedParameter(
            "logprobs", "the ChatGPT web backend does not expose token probabilities."
        )
    if chat.top_logprobs:
        raise UnsupportedParameter(
            "top_logprobs", "the ChatGPT web backend does not expose token probabilities."
        )
    if chat.logit_bias:
        raise UnsupportedParameter("logit_bias", "the ChatGPT web backend takes no token biases.")
    if chat.modalities and any(m != "text" for m in chat.modalities):
        raise UnsupportedParameter("modalities", "only text output is available.")
    if chat.audio is not None:
        raise UnsupportedParameter("audio", "only text output is available.")


def legacy_functions(chat: ChatCompletionRequest) -> tuple[list[dict[str, Any]] | None, object]:
    """``tools`` and ``tool_choice``, from the legacy ``functions`` / ``function_call`` if sent."""
    if chat.functions is None or chat.tools is not None:
        return chat.tools, chat.tool_choice
    tools = [{"type": "function", "function": f} for f in chat.functions]
    choice: object = chat.function_call
    if isinstance(choice, dict):
        choice = {"type": "function", "function": {"name": choice.get("name")}}
    return tools, choice


def legacy_messages(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """Assistant messages with a legacy ``function_call``, given it as a tool call."""
    out = list(messages)
    for i, message in enumerate(messages):
        call: FunctionCall | None = message.function_call
        if message.role == "assistant" and call is not None and not message.tool_calls:
            tool_call = ToolCall(id=f"call_legacy_{i}", function=call)
            out[i] = message.model_copy(update={"tool_calls": [tool_call]})
    return out


def new_messages(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """What a continued conversation has not seen: the messages after the last answer."""
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=-1)
    return list(messages[last + 1 :]) or list(messages[-1:])


async def list_models(request: Request) -> Response:
    """The models this deployment maps (see ``chat2api.convert.models``)."""
    created = int(time.time())
    data = [model_card(name, created) for name in listed_models()]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")


async def retrieve_model(request: Request) -> Response:
    """``GET /v1/models/{model}``: one model of the table; 404 ``model_not_found`` otherwise."""
    name: str = request.path_params["model"]
    card = model_card(name, int(time.time()))
    if card is None:
        raise ModelNotFound(f"The model '{name}' does not exist.", param="model")
    return Response(orjson.dumps(card), media_type="application/json")


async def chat_completions(request: Request) -> Response:
    """``POST /v1/chat/completions``: streamed or not, answered by the ChatGPT backend.

    Served by ``chat2api.app.Chat2APIApp`` directly, not through ``routes``.
    """
    state: AppState = request.app.state.chat2api
    accounts = await account_source(request, state)  # the key before the body
    chat = parse_request(await request.body(), ChatCompletionRequest)
    model = chat.model or state.settings.default_model
    note(model=model)
    refuse_unsupported(chat)
    route = resolve_model(model)
    legacy = chat.functions is not None and chat.tools is None
    raw_tools, tool_choice = legacy_functions(chat)
    fmt = chat_response_format(chat.response_format)
    if fmt is not None and fmt.kind == "json_schema":
        await require_schema(fmt.schema, "response_format.json_schema.schema")
    tools = await parse_tools(raw_tools) if raw_tools else []  # before any fetch
    history = not state.settings.history_disabled
    owner = owner_of(request)
    messages, continues = chat.messages, None
    if chat.conversation_id is not None:
        if not history:
            raise InvalidRequest(
                "This deployment keeps no upstream history (HISTORY_DISABLED=true), so "
                "conversation_id cannot be continued.",
                param="conversation_id",
            )
        found = await find_continuation(
            state,
            chat.conversation_id,
            owner,
            accounts,
            param="conversation_id",
            what="Conversation",
        )
        accounts, continues = found.accounts, found.continues
        if chat.message_id:
            continues = (continues[0], chat.message_id)
        messages = new_messages(chat.messages)
    messages, attachments = await gather_attachments(state.settings, legacy_messages(messages))
    parallel = chat.parallel_tool_calls and not legacy  # a legacy answer holds one call
    turns = prompt_turns(messages, tools, tool_choice, parallel)
    if fmt is not None:
        turns.insert(0, PromptTurn("system", format_instructions(fmt)))
    offset = len(turns) - len(messages)  # instruction turns may come first
    calls = None
    if tools and (choice := resolve_tool_choice(tool_choice, tools)) != "none":
        calls = ToolCalls(tools, parallel=parallel, choice=choice)
    ask = Ask(
        state=state,
        accounts=accounts,
        route=route,
        turns=turns,
        attachments={index + offset: items for index, items in attachments.items()},
        history_disabled=state.settings.history_disabled,
        continues=continues,
        reasoning_effort=chat.reasoning_effort,
        # web_search_options: the web app's own search, which decides by itself when to search.
        system_hints=["search"] if chat.web_search_options is not None else [],
    )
    shape = AnswerShape(
        token_limit=chat.token_limit,
        tools=calls,
        format=fmt,
        stop=chat.stop_sequences,
        live=chat.stream,
        legacy_functions=legacy,
    )
    stream, include_usage = chat.stream, chat.include_usage
    # Not kept while the upstream is asked: during a burst, most requests wait there.
    del chat, messages, attachments

    answering = await start_answer(ask, shape, public_base(request, state.settings.prefix_path))
    turn, answer = answering.turn, answering.answer
    note(account=account_fingerprint(turn.lease))

    async def remember() -> None:
        if history and answer.conversation_id:
            await save_binding(state, answer.conversation_id, owner, turn, answer)

    headers: dict[str, str] = {}
    if slug := turn.metadata.model_slug:
        headers[SLUG_HEADER] = slug
    if stream:
        return EventStream(
            _stream(
                answering.deltas, answer, remember, include_usage=include_usage, history=history
            ),
            headers=SSE_HEADERS | headers,
        )
    async for _ in answering.deltas:
        pass
    await remember()
    if answer.model_slug:
        headers[SLUG_HEADER] = answer.model_slug
    return Response(
        orjson.dumps(answer.completion(await answer.usage(), history=history)),
        media_type="application/json",
        headers=headers,
    )


class ContentChunk:
    """The SSE chunk of a delta that is only ``content``, from a per-stream template.

    The bytes ``sse_data(answer.chunk({"content": text}, ...))`` gives, with
    the JSON of ``text`` spliced into the rest of the chunk serialised once:
    again only when the ids the chunk carries change (``history``).
    """

    __slots__ = ("_answer", "_history", "_ids", "_parts", "_usage")

    _MARK = "\ue000chat2api content\ue001"
    _MARK_JSON = orjson.dumps(_MARK)

    def __init__(self, answer: Answer, *, include_usage: bool, history: bool) -> None:
        self._answer = answer
        self._usage = include_usage
        self._history = history
        self._ids: tuple[str | None, str | None] | None = None
        self._parts: list[bytes] | None = None

    def encode(self, text: str) -> bytes:
        answer = self._answer
        ids = (answer.conversation_id, answer.message_id)
        if ids != self._ids:
            self._ids = ids
            whole = sse_data(
                answer.chunk(
                    {"content": self._MARK},
                    with_usage_field=self._usage,
                    history=self._history,
                )
            )
            split = whole.split(self._MARK_JSON)
            self._parts = split if len(split) == 2 else None  # the mark elsewhere too
        parts = self._parts
        if parts is None:
            return sse_data(
                answer.chunk({"content": text}, with_usage_field=self._usage, history=self._history)
            )
        return parts[0] + orjson.dumps(text) + parts[1]


async def _stream(
    deltas: AsyncGenerator[dict[str, Any], None],
    answer: Answer,
    remember: Callable[[], Awaitable[None]],
    *,
    include_usage: bool,
    history: bool,
) -> AsyncIterator[bytes]:
    """SSE chunks of one answer; a failure mid-stream ends it with an error event."""

    template = ContentChunk(answer, include_usage=include_usage, history=history)

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        if finish_reason is None and len(delta) == 1:
            text = delta.get("content")
            if type(text) is str:
                return template.encode(text)
        return sse_data(
            answer.chunk(delta, finish_reason, with_usage_field=include_usage, history=history)
        )

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for delta in deltas:
            if len(delta) == 1 and type(text := delta.get("content")) is str:
                yield template.encode(text)  # what chunk(delta) gives, without the call
            else:
                yield chunk(delta)
    except Chat2APIError as exc:
        note_error(exc.code, f"mid-stream: {exc.message}")  # logged once, with the request
        yield sse_data(exc.to_dict())
        return
    finally:
        await deltas.aclose()
    # The sources cited, all in the last chunk as OpenAI's search models send them
    # (indices into the whole content; one list, so SDK accumulators keep it whole).
    last = {"annotations": answer.annotations} if answer.annotations else {}
    yield chunk(last, answer.finish_reason or "stop")
    try:
        await remember()
    except StoreUnavailable as exc:  # the answer came, but cannot be continued
        yield sse_data(exc.to_dict())
        return
    if include_usage:
        yield sse_data(answer.usage_chunk(await answer.usage(), history=history))
    yield b"data: [DONE]\n\n"


routes = [
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", retrieve_model, methods=["GET"]),
]
