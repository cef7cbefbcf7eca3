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
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from chat2api.api.auth import account_source
from chat2api.api.bindings import (
    BINDING,
    BINDING_TTL,
    NotFound,
    find_continuation,
    owner_of,
    save_binding,
)
from chat2api.api.chat import (
    account_fingerprint,
    answer_deltas,
    load_attachments,
    public_base,
    sse_data,
    upload_body,
)
from chat2api.api.downloads import DownloadLinks
from chat2api.api.requestlog import note, note_error
from chat2api.api.routing import methods
from chat2api.api.streaming import EventStream
from chat2api.conversation import Turn, start_turn
from chat2api.convert.completion import Answer
from chat2api.convert.messages import PromptTurn, conversation_body
from chat2api.convert.models import resolve_model
from chat2api.convert.responses import (
    ResponseBuilder,
    input_turns,
    responses_usage,
)
from chat2api.convert.structured import (
    StructuredAnswer,
    format_instructions,
    responses_text_format,
)
from chat2api.convert.toolcalls import ToolCalls
from chat2api.convert.tools import (
    parse_tools,
    require_schema,
    resolve_tool_choice,
    tool_instructions,
)
from chat2api.convert.tools_responses import ToolTable
from chat2api.errors import Chat2APIError, InvalidRequest, StoreUnavailable
from chat2api.pool.lease import AccountSource
from chat2api.state import AppState
from chat2api.upstream.files import UploadedFile

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
    if not isinstance(data.get("model"), str) or not data["model"]:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model")
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
    attachments = await load_attachments(state, parts)
    calls = None
    if tools and (choice := resolve_tool_choice(tool_choice, tools)) != "none":
        calls = ToolCalls(tools, parallel=parallel, choice=choice)
        turns.insert(0, ("system", tool_instructions(tools, tool_choice, parallel), None))
        attachments = {index + 1: items for index, items in attachments.items()}
    if fmt is not None:
        turns.insert(0, ("system", format_instructions(fmt), None))
        attachments = {index + 1: items for index, items in attachments.items()}

    continues: tuple[str, str] | None = None
    if previous := data.get("previous_response_id"):
        found = await find_continuation(
            state,
            previous,
            owner,
            accounts,
            param="previous_response_id",
            what="Previous response",
        )
        accounts, continues = found.accounts, found.continues

    answer = Answer(
        route,
        turns,
        data.get("max_output_tokens"),
        request.app.state.tokens,
        calls,
        structured=StructuredAnswer(fmt, live=bool(data.get("stream")))
        if fmt is not None
        else None,
    )
    effort = (data.get("reasoning") or {}).get("effort")
    hints = ["search"] if table.search and tool_choice != "none" else []

    async def start(extra: Sequence[PromptTurn] = ()) -> Turn:
        def make(files: Mapping[int, Sequence[UploadedFile]]) -> dict[str, Any]:
            return conversation_body(
                [*turns, *extra],
                route,
                history_disabled=not store,
                encoding=state.settings.upstream_encoding,
                continues=continues,
                reasoning_effort=effort,
                files=files,
                system_hints=hints,
            )

        body = upload_body(state, attachments, make)
        return await start_turn(
            state.backend, accounts, body, model=route.slug, retries=state.settings.retry_times
        )

    turn = await start()
    note(account=account_fingerprint(turn.lease))
    answer.links = DownloadLinks(state, public_base(request, state), turn.lease)
    builder = ResponseBuilder(
        data, text_format=fmt.echo() if fmt is not None else None, tools=table
    )
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if warning := table.warning():
        headers[WARNING_HEADER] = warning

    async def save() -> None:
        if not store:
            return
        await state.store.put_record(
            RESPONSE, builder.id, {"owner": owner, "response": builder.response}, RECORD_TTL
        )
        await save_binding(state, builder.id, owner, turn, answer)

    correctable = calls is not None or fmt is not None
    deltas = answer_deltas(turn, answer, start if correctable else None)
    if data.get("stream"):
        return EventStream(_events(builder, deltas, answer, save), headers=headers)
    async for delta in deltas:
        builder.feed(delta)
    builder.finish(responses_usage(await answer.usage()), finish_reason=answer.finish_reason)
    await save()
    del headers["Cache-Control"], headers["X-Accel-Buffering"]
    return Response(orjson.dumps(builder.response), media_type="application/json", headers=headers)


def _event(event: dict[str, Any]) -> bytes:
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\n" + sse_data(event)


async def _events(
    builder: ResponseBuilder,
    deltas: AsyncGenerator[dict[str, Any], None],
    answer: Answer,
    save: Callable[[], Awaitable[None]],
) -> AsyncIterator[bytes]:
    """The Responses event stream; an upstream failure ends it with ``response.failed``."""
    for event in builder.start():
        yield _event(event)
    try:
        async for delta in deltas:
            for event in builder.feed(delta):
                yield _event(event)
    except Chat2APIError as exc:
        note_error(exc.code, f"mid-stream: {exc.message}")  # logged once, with the request
        for event in builder.fail(exc.code, exc.message):
            yield _event(event)
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
        yield _event(event)


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
