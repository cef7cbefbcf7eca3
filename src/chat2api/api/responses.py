"""``/v1/responses``: create (streamed or not), retrieve, delete.

The answer is produced exactly as for chat completions (the same turn, tool
engine and ``Answer``); ``convert.responses.ResponseBuilder`` folds its deltas
into Responses output items and events.

State: with ``store`` true (the default) the response is saved, and so is a
binding ``response id → (account, upstream conversation, last message)``;
``previous_response_id`` then continues that upstream conversation on the
same account, sending only the new input. The upstream keeps the
conversation only when asked to, so ``store: true`` sends a conversation
that stays in the account's ChatGPT history; ``store: false`` sends a
temporary chat and keeps nothing. Saved responses are visible only to the
same API key (a hash of it is kept with them).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from chat2api.answering import (
    AnswerShape,
    Ask,
    account_fingerprint,
    load_attachments,
    start_answer,
)
from chat2api.api.auth import account_source
from chat2api.api.bindings import (
    BINDING,
    BINDING_TTL,
    NotFound,
    find_continuation,
    owner_of,
    save_binding,
)
from chat2api.api.requestlog import note, note_error
from chat2api.api.routing import methods, public_base
from chat2api.api.sse import SSE_HEADERS, sse_event
from chat2api.api.streaming import EventStream
from chat2api.convert.completion import Answer
from chat2api.convert.models import resolve_model
from chat2api.convert.responses import (
    ResponseBuilder,
    input_turns,
    responses_usage,
)
from chat2api.convert.structured import format_instructions, responses_text_format
from chat2api.convert.tools import (
    ToolCalls,
    ToolTable,
    parse_tools,
    require_schema,
    resolve_tool_choice,
    tool_instructions,
    with_image_size,
)
from chat2api.errors import Chat2APIError, InvalidRequest, StoreUnavailable
from chat2api.pool.lease import AccountSource
from chat2api.state import AppState
from chat2api.values import PromptTurn

log = logging.getLogger(__name__)

RESPONSE = "response"
WARNING_HEADER = "X-Chat2API-Warning"
RECORD_TTL = BINDING_TTL  # as OpenAI: stored responses are kept 30 days


def _field(data: Mapping[str, Any], name: str, kind: type) -> Any:
    """``data[name]`` if absent or of type ``kind`` (a bool is not an int here)."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise InvalidRequest(f"Invalid type for '{name}': expected {kind.__name__}.", param=name)
    return value


def _unsupported(param: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"'{param}' is not supported by chat2api: {why}", param=param, code="unsupported_parameter"
    )


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            "We could not parse the JSON body of your request.", code="invalid_json"
        ) from exc
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    if data.get("model") is not None and (not isinstance(data["model"], str) or not data["model"]):
        raise InvalidRequest("model must be a model name (or left out).", param="model")
    if data.get("input") is None:
        raise InvalidRequest("Missing required parameter: 'input'.", param="input")
    _field(data, "stream", bool)
    _field(data, "store", bool)
    _field(data, "parallel_tool_calls", bool)
    _field(data, "instructions", str)
    _field(data, "previous_response_id", str)
    limit = _field(data, "max_output_tokens", int)
    if limit is not None and limit < 1:
        raise InvalidRequest("max_output_tokens must be at least 1.", param="max_output_tokens")
    if _field(data, "top_logprobs", int):
        raise _unsupported("top_logprobs", "token probabilities are not available upstream.")
    if _field(data, "background", bool):
        raise _unsupported("background", "responses are answered while the request waits.")
    include = _field(data, "include", list) or []
    if any(isinstance(i, str) and i.endswith("logprobs") for i in include):
        raise _unsupported("include", "token probabilities are not available upstream.")
    reasoning = _field(data, "reasoning", dict) or {}
    effort = reasoning.get("effort")
    if effort not in (None, "none", "minimal", "low", "medium", "high", "xhigh"):
        raise InvalidRequest(f"Unknown reasoning effort {effort!r}.", param="reasoning.effort")
    return data


async def create_response(request: Request) -> Response:
    """``POST /v1/responses``: create a model response (the OpenAI Responses API).

    Served by ``chat2api.app.Chat2APIApp`` directly, not through ``router``.
    """
    state: AppState = request.app.state.chat2api
    accounts: AccountSource = await account_source(request, state)  # the key before the body
    data = _parse(await request.body())
    data["model"] = data.get("model") or state.settings.default_model
    note(model=data["model"])
    route = resolve_model(data["model"])
    store = data.get("store", True) is not False
    owner = owner_of(request)
    table = ToolTable()
    table.add_tools(data.get("tools"), "tools")
    parallel = data.get("parallel_tool_calls", True) is not False
    fmt = responses_text_format(data.get("text"))
    if fmt is not None and fmt.kind == "json_schema":
        await require_schema(fmt.schema, "text.format.schema")
    turns, parts = input_turns(data["input"], data.get("instructions"), table)
    tool_choice = table.check_choice(data.get("tool_choice"))
    tools = await parse_tools(table.functions) or []  # before any fetch
    ask = Ask(
        state=state,
        accounts=accounts,
        route=route,
        turns=with_image_size(turns, table.image_size),
        attachments=await load_attachments(state.settings, parts),
        history_disabled=not store,
        reasoning_effort=(data.get("reasoning") or {}).get("effort"),
        system_hints=table.system_hints(data.get("tool_choice")),
    )
    calls = None
    if tools and (choice := resolve_tool_choice(tool_choice, tools)) != "none":
        calls = ToolCalls(tools, parallel=parallel, choice=choice)
        ask.prepend(PromptTurn("system", tool_instructions(tools, tool_choice, parallel)))
    if fmt is not None:
        ask.prepend(PromptTurn("system", format_instructions(fmt)))
    if previous := data.get("previous_response_id"):
        found = await find_continuation(
            state,
            previous,
            owner,
            accounts,
            param="previous_response_id",
            what="Previous response",
        )
        ask.accounts, ask.continues = found.accounts, found.continues
    shape = AnswerShape(
        token_limit=data.get("max_output_tokens"),
        tools=calls,
        format=fmt,
        live=bool(data.get("stream")),
        image_items=table.image is not None,  # images as image_generation_call items
    )

    answering = await start_answer(ask, shape, public_base(request, state.settings.prefix_path))
    turn, answer = answering.turn, answering.answer
    note(account=account_fingerprint(turn.lease))
    builder = ResponseBuilder(
        data, text_format=fmt.echo() if fmt is not None else None, tools=table
    )
    headers = dict(SSE_HEADERS)
    if warning := table.warning():
        headers[WARNING_HEADER] = warning

    async def save() -> None:
        if not store:
            return
        await state.store.put_record(
            RESPONSE, builder.id, {"owner": owner, "response": builder.response}, RECORD_TTL
        )
        await save_binding(state, builder.id, owner, turn, answer)

    if data.get("stream"):
        return EventStream(_events(builder, answering.deltas, answer, save), headers=headers)
    async for delta in answering.deltas:
        builder.feed(delta)
    builder.finish(responses_usage(await answer.usage()), finish_reason=answer.finish_reason)
    await save()
    del headers["Cache-Control"], headers["X-Accel-Buffering"]
    return Response(orjson.dumps(builder.response), media_type="application/json", headers=headers)


async def _events(
    builder: ResponseBuilder,
    deltas: AsyncGenerator[dict[str, Any], None],
    answer: Answer,
    save: Callable[[], Awaitable[None]],
) -> AsyncIterator[bytes]:
    """The Responses event stream; an upstream failure ends it with ``response.failed``."""
    for event in builder.start():
        yield sse_event(event)
    try:
        async for delta in deltas:
            for event in builder.feed(delta):
                yield sse_event(event)
    except Chat2APIError as exc:
        note_error(exc.code, f"mid-stream: {exc.message}")  # logged once, with the request
        for event in builder.fail(exc.code, exc.message):
            yield sse_event(event)
        return
    finally:
        await deltas.aclose()
    usage = responses_usage(await answer.usage())
    events = builder.finish(usage, finish_reason=answer.finish_reason)
    try:
        await save()
    except StoreUnavailable as exc:  # asked to be stored, and could not be
        events = builder.fail(exc.code, exc.message)
    for event in events:
        yield sse_event(event)


async def retrieve_response(request: Request) -> Response:
    """A stored response (same API key only)."""
    state: AppState = request.app.state.chat2api
    response_id = request.path_params["response_id"]
    record = await state.store.get_record(RESPONSE, response_id)
    if record is None or record.get("owner") != owner_of(request):
        raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
    return Response(orjson.dumps(record["response"]), media_type="application/json")


async def delete_response(request: Request) -> Response:
    """Delete a stored response and its conversation binding."""
    state: AppState = request.app.state.chat2api
    response_id = request.path_params["response_id"]
    record = await state.store.get_record(RESPONSE, response_id)
    if record is None or record.get("owner") != owner_of(request):
        raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
    await state.store.delete_record(RESPONSE, response_id)
    await state.store.delete_record(BINDING, response_id)
    body = {"id": response_id, "object": "response.deleted", "deleted": True}
    return Response(orjson.dumps(body), media_type="application/json")


routes = [
    methods("/v1/responses/{response_id}", {"GET": retrieve_response, "DELETE": delete_response}),
]
