"""``POST /v1/chat/completions`` and ``GET /v1/models``."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError

from chat2api.api.auth import account_source
from chat2api.api.errors import invalid_from_validation
from chat2api.api.schemas import ChatCompletionRequest
from chat2api.conversation import Turn, start_turn, stream_error
from chat2api.convert.completion import Answer
from chat2api.convert.messages import conversation_body, message_text
from chat2api.convert.models import listed_models, resolve_model
from chat2api.errors import Chat2APIError, InvalidRequest
from chat2api.protocol.events import StreamFailed
from chat2api.state import AppState

log = logging.getLogger(__name__)

router = APIRouter()
SLUG_HEADER = "X-Chat2API-Model-Slug"
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _parse(raw: bytes) -> ChatCompletionRequest:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. The body must be a JSON "
            "object (Content-Type: application/json).",
            code="invalid_json",
        ) from exc
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        raise invalid_from_validation(exc.errors()) from exc


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


@router.get("/v1/models")
async def list_models() -> Response:
    """The models this deployment maps (see ``chat2api.convert.models``)."""
    created = int(time.time())
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": "chat2api"}
        for name in listed_models()
    ]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    """OpenAI chat completions, streamed or not, answered by the ChatGPT backend."""
    state: AppState = request.app.state.chat2api
    chat = _parse(await request.body())
    route = resolve_model(chat.model)
    accounts = account_source(request, state)
    turns = [
        (message.role, message_text(message, i), message.name)
        for i, message in enumerate(chat.messages)
    ]
    body = conversation_body(
        chat.messages,
        route,
        history_disabled=state.settings.history_disabled,
        encoding=state.settings.upstream_encoding,
    )
    answer = Answer(route, turns, chat.token_limit, request.app.state.tokens)
    turn = await start_turn(
        state.backend, accounts, body, model=route.slug, retries=state.settings.retry_times
    )
    history = not state.settings.history_disabled
    headers: dict[str, str] = {}
    if slug := turn.metadata.model_slug:
        headers[SLUG_HEADER] = slug
    if chat.stream:
        return StreamingResponse(
            _stream(turn, answer, include_usage=chat.include_usage, history=history),
            media_type="text/event-stream",
            headers=_SSE_HEADERS | headers,
        )
    async for event in turn.events():
        if isinstance(event, StreamFailed):
            raise stream_error(event)
        await answer.apply(event)
        if answer.done:
            await turn.succeeded()
            break
    await turn.aclose()
    if answer.model_slug:
        headers[SLUG_HEADER] = answer.model_slug
    return Response(
        orjson.dumps(answer.completion(await answer.usage(), history=history)),
        media_type="application/json",
        headers=headers,
    )


async def _stream(
    turn: Turn, answer: Answer, *, include_usage: bool, history: bool
) -> AsyncIterator[bytes]:
    """SSE chunks of one answer; a failure mid-stream ends it with an error event."""

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return _sse(
            answer.chunk(delta, finish_reason, with_usage_field=include_usage, history=history)
        )

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for event in turn.events():
            if isinstance(event, StreamFailed):
                raise stream_error(event)
            content, reasoning = await answer.apply(event)
            if reasoning:
                yield chunk({"reasoning_content": reasoning})
            if content:
                yield chunk({"content": content})
            if answer.done:
                await turn.succeeded()
                break
    except Chat2APIError as exc:
        log.warning("stream %s failed mid-way: %s (%s)", answer.id, exc.code, exc.message)
        yield _sse(exc.to_dict())
        return
    finally:
        await turn.aclose()
    yield chunk({}, answer.finish_reason or "stop")
    if include_usage:
        yield _sse(answer.usage_chunk(await answer.usage(), history=history))
    yield b"data: [DONE]\n\n"
