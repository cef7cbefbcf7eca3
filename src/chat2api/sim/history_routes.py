"""Reading kept conversations (spec 1.8): one conversation, and the owner's list."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from chat2api.sim import faults
from chat2api.sim.common import headers_of, identify, owner_of, sim_state
from chat2api.sim.file_routes import poll_image_tasks

MAX_LIST_LIMIT = 100


async def get_conversation(request: Request) -> Response:
    """GET .../conversation/{id} — a kept conversation (spec 1.8) for its owner, else 404."""
    state = sim_state(request)
    state.stats.conversation_gets += 1
    who = identify(request)
    if isinstance(who, Response):
        return who
    conv = state.conversations.get(request.path_params["id"], owner_of(who, headers_of(request)))
    if conv is None:
        state.stats.conversation_not_found += 1
        return faults.conversation_not_found()
    poll_image_tasks(state, conv, time.time())
    return faults.json_response(200, conv.detail())


async def list_conversations(request: Request) -> Response:
    """GET .../conversations?offset&limit&order — the owner's kept conversations, newest first."""
    state = sim_state(request)
    state.stats.conversation_lists += 1
    who = identify(request)
    if isinstance(who, Response):
        return who
    query = request.query_params
    try:
        offset = int(query.get("offset", "0"))
        limit = int(query.get("limit", "28"))
    except ValueError:
        offset = limit = -1
    if offset < 0 or not 0 < limit <= MAX_LIST_LIMIT:
        return faults.json_response(422, {"detail": "Invalid offset or limit"})
    order = query.get("order", "updated")
    mine = state.conversations.owned_by(owner_of(who, headers_of(request)), order)
    body = {
        "items": [c.summary() for c in mine[offset : offset + limit]],
        "total": len(mine),
        "limit": limit,
        "offset": offset,
        "has_missing_conversations": False,
    }
    return faults.json_response(200, body)
