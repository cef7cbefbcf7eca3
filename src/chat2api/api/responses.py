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
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
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
from chat2api.api.errors import parse_request
from chat2api.api.requestlog import note, note_error
from chat2api.api.routing import methods, public_base
from chat2api.api.sse import SSE_HEADERS, sse_event
from chat2api.api.streaming import EventStream
from chat2api.convert.completion import Answer
from chat2api.convert.models import resolve_model
from chat2api.convert.response_request import read_request
from chat2api.convert.response_schemas import ResponseRequest
from chat2api.convert.responses import ResponseBuilder, responses_usage
from chat2api.convert.tools import ToolCalls, require_schema
from chat2api.errors import (
    Chat2APIError,
    StoreUnavailable,
    UnsupportedParameter,
)
from chat2api.pool.lease import AccountSource
from chat2api.state import AppState

log = logging.getLogger(__name__)

RESPONSE = "response"
WARNING_HEADER = "X-Chat2API-Warning"
RECORD_TTL = BINDING_TTL  # as OpenAI: stored responses are kept 30 days


def refuse_unsupported(request: ResponseRequest) -> None:
    """Refuse fields whose explicit ask cannot be honoured (docs/api.md lists every field)."""
    if request.top_logprobs:
        raise UnsupportedParameter("top_logprobs", "token probabilities are not available.")
    if request.background:
        raise UnsupportedParameter("background", "responses are answered while the request waits.")
    if any(item.endswith("logprobs") for item in request.include or ()):
        raise UnsupportedParameter("include", "token probabilities are not available.")


async def create_response(request: Request) -> Response:
    """``POST /v1/responses``: create a model response (the OpenAI Responses API).

    Served by ``chat2api.app.Chat2APIApp`` directly, not through ``router``.
    """
    state: AppState = request.app.state.chat2api
    accounts: AccountSource = await account_source(request, state)  # the key before the body
    body = parse_request(await request.body(), ResponseRequest)
    model = body.model or state.settings.default_model
    note(model=model)
    refuse_unsupported(body)
    route = resolve_model(model)
    owner = owner_of(request)
    asked = read_request(body)
    fmt, table = asked.format, asked.tools
    if fmt is not None and fmt.kind == "json_schema":
        await require_schema(fmt.schema, "text.format.schema")
    await table.require_valid()  # before any fetch
    ask = Ask(
        state=state,
        accounts=accounts,
        route=route,
        turns=asked.turns,
        attachments=await load_attachments(state.settings, asked.parts),
        history_disabled=not body.stored,
        reasoning_effort=body.reasoning_effort,
        system_hints=asked.system_hints,
    )
    calls = None
    if asked.calls_tools:
        calls = ToolCalls(table.functions, parallel=body.parallel, choice=asked.choice)
    if previous := body.previous_response_id:
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
        token_limit=body.max_output_tokens,
        tools=calls,
        format=fmt,
        live=bool(body.stream),
        image_items=table.image is not None,  # images as image_generation_call items
    )
    store, stream, echoed = body.stored, bool(body.stream), body.echoed(model)
    # Not kept while the upstream is asked: during a burst, most requests wait there.
    del body, asked

    answering = await start_answer(ask, shape, public_base(request, state.settings.prefix_path))
    turn, answer = answering.turn, answering.answer
    note(account=account_fingerprint(turn.lease))
    builder = ResponseBuilder(
        echoed, text_format=fmt.echo() if fmt is not None else None, tools=table
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

    if stream:
        return EventStream(_events(builder, answering.deltas, answer, save), headers=headers)
    async for delta in answering.deltas:
        builder.feed(delta)
    builder.finish(responses_usage(await answer.usage()), finish_reason=answer.finish_reason)
    await save()
    del headers["Cache-Control"], headers["X-Accel-Buffering"]
    return Response(orjson.dumps(builder.response), media_type="application/json", headers=headers)


class TextDeltaEvent:
    """The ``response.output_text.delta`` event of an open message item, from a template.

    The bytes ``sse_event`` gives for that event, with its sequence number
    and the JSON of its text spliced into the rest, serialised once per
    item (again only when the item or its index changes).
    """

    __slots__ = ("_at", "_parts")

    _SEQ = "\ue000chat2api seq\ue001"
    _TEXT = "\ue000chat2api text\ue001"
    _SEQ_JSON = orjson.dumps(_SEQ)
    _TEXT_JSON = orjson.dumps(_TEXT)
    _OPEN = "\ue000".encode()

    def __init__(self) -> None:
        self._at: tuple[str, int] | None = None
        self._parts: tuple[bytes, bytes, bytes] | None = None

    def encode(self, seq: int, item_id: str, output_index: int, text: str) -> bytes:
        at = (item_id, output_index)
        if at != self._at:
            self._at = at
            whole = sse_event(self._event(self._SEQ, item_id, output_index, self._TEXT))
            head, seq_mark, rest = whole.partition(self._SEQ_JSON)
            middle, text_mark, tail = rest.partition(self._TEXT_JSON)
            unique = seq_mark and text_mark and whole.count(self._OPEN) == 2  # nowhere else
            self._parts = (head, middle, tail) if unique else None
        parts = self._parts
        if parts is None:
            return sse_event(self._event(seq, item_id, output_index, text))
        return b"".join((parts[0], str(seq).encode(), parts[1], orjson.dumps(text), parts[2]))

    @staticmethod
    def _event(seq: object, item_id: str, output_index: int, text: str) -> dict[str, Any]:
        # The fields and their order as ResponseBuilder._text_into makes them.
        return {
            "type": "response.output_text.delta",
            "sequence_number": seq,
            "item_id": item_id,
            "output_index": output_index,
            "content_index": 0,
            "delta": text,
            "logprobs": [],
        }


async def _events(
    builder: ResponseBuilder,
    deltas: AsyncGenerator[dict[str, Any], None],
    answer: Answer,
    save: Callable[[], Awaitable[None]],
) -> AsyncIterator[bytes]:
    """The Responses event stream; an upstream failure ends it with ``response.failed``."""
    for event in builder.start():
        yield sse_event(event)
    template = TextDeltaEvent()
    try:
        async for delta in deltas:
            if len(delta) == 1 and type(text := delta.get("content")) is str and text:
                at = builder.output_text(text)
                if at is not None:  # what sse_event gives for builder.feed(delta)'s one event
                    yield template.encode(*at, text)
                    continue
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
