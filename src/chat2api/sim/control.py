"""The `/_sim/` control routes tests drive the simulator with: records, counters, knobs,
queued faults and scripts, minted accounts (`/_sim/files` is in file_routes.py,
`/_sim/hits` in webapp.py).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from chat2api.sim import faults
from chat2api.sim.common import parse_json, sim_state
from chat2api.sim.tokens import (
    ACCOUNT_STATES,
    REFRESH_STATES,
    is_optional_int,
    mint_access_token,
    mint_refresh_token,
    read_access_token,
    read_refresh_token,
)

SCRIPT_FIELDS = frozenset({"reply", "reasoning", "chunks", "model_slug", "finish"})


async def admin_requests(request: Request) -> Response:
    """GET /_sim/requests — recorded requirements and conversation requests, oldest first."""
    state = sim_state(request)
    path = request.query_params.get("path")
    items = [r for r in state.requests if path is None or r["path"] == path]
    return faults.json_response(200, {"requests": items})


async def admin_stats(request: Request) -> Response:
    """GET /_sim/stats — the counters."""
    return faults.json_response(200, vars(sim_state(request).stats))


async def admin_reset(request: Request) -> Response:
    """POST /_sim/reset — clear counters, records, bindings, queued faults and scripts."""
    sim_state(request).reset()
    return faults.json_response(200, {"ok": True})


async def admin_script(request: Request) -> Response:
    """GET/POST /_sim/script — list the queued scripts, or queue one (JSON: the `script` fields)."""
    state = sim_state(request)
    if request.method == "POST":
        body = parse_json(await request.body())
        if not isinstance(body, dict) or "_unparsed" in body:
            return faults.json_response(400, {"detail": "expected a JSON object"})
        unknown = set(body) - SCRIPT_FIELDS
        if unknown:
            return faults.json_response(
                400, {"detail": f"unknown script field: {sorted(unknown)[0]}"}
            )
        reply = body.get("reply")
        chunks = body.get("chunks")
        if not isinstance(reply, str):
            return faults.json_response(400, {"detail": "reply must be a string"})
        if chunks is not None and not isinstance(chunks, list):
            return faults.json_response(400, {"detail": "chunks must be a list of strings"})
        try:
            state.script(
                reply,
                reasoning=body.get("reasoning"),
                chunks=chunks,
                model_slug=body.get("model_slug"),
                finish=body.get("finish", "stop"),
            )
        except ValueError as exc:
            return faults.json_response(400, {"detail": str(exc)})
    return faults.json_response(200, {"queued": [s.as_json() for s in state.scripts]})


async def admin_last_prompt(request: Request) -> Response:
    """GET /_sim/last_prompt — what the model saw (`messages`) and what the body carried."""
    state = sim_state(request)
    body = {
        "messages": [{"role": r, "text": t} for r, t in state.last_prompt()],
        "request_messages": [{"role": r, "text": t} for r, t in state.last_request_messages()],
    }
    return faults.json_response(200, body)


async def admin_config(request: Request) -> Response:
    """GET/POST /_sim/config — read or patch the knobs."""
    state = sim_state(request)
    if request.method == "POST":
        changes = parse_json(await request.body())
        if not isinstance(changes, dict) or "_unparsed" in changes:
            return faults.json_response(400, {"detail": "expected a JSON object"})
        try:
            state.config = state.config.patched(changes)
        except ValueError as exc:
            return faults.json_response(400, {"detail": str(exc)})
    return faults.json_response(200, state.config.as_json())


async def admin_faults(request: Request) -> Response:
    """POST /_sim/faults — queue `{"fault": name, "count": n}` for the next n conversations."""
    state = sim_state(request)
    body = parse_json(await request.body())
    if not isinstance(body, dict):
        return faults.json_response(400, {"detail": "expected a JSON object"})
    name = body.get("fault")
    count = body.get("count", 1)
    if not isinstance(name, str) or not isinstance(count, int) or count < 0:
        return faults.json_response(400, {"detail": "expected {fault: str, count: int}"})
    try:
        state.queue_faults(name, count)
    except ValueError as exc:
        return faults.json_response(400, {"detail": str(exc)})
    return faults.json_response(200, {"queued": state.queued_faults()})


async def admin_accounts(request: Request) -> Response:
    """POST /_sim/accounts — mint an access token (or, with kind=refresh_token, a refresh token)."""
    body = parse_json(await request.body()) or {}
    if not isinstance(body, dict):
        return faults.json_response(400, {"detail": "expected a JSON object"})
    kind = body.get("kind", "access_token")
    if kind == "refresh_token":
        return _admin_refresh_token(body)
    if kind != "access_token":
        return faults.json_response(400, {"detail": f"unknown kind: {kind}"})
    acct_state = body.get("state", "valid")
    plan = body.get("plan", "plus")
    clears_in = body.get("clears_in")
    account_id = body.get("account_id")
    if (
        acct_state not in ACCOUNT_STATES
        or not isinstance(plan, str)
        or not (clears_in is None or isinstance(clears_in, int))
        or not (account_id is None or isinstance(account_id, str))
    ):
        return faults.json_response(400, {"detail": "bad account request"})
    token = mint_access_token(
        state=acct_state, plan=plan, account_id=account_id, clears_in=clears_in
    )
    account = read_access_token(token)
    return faults.json_response(
        200,
        {
            "access_token": token,
            "state": account.state,
            "plan": account.plan,
            "account_id": account.account_id,
            "user_id": account.user_id,
            "expires_at": account.expires_at,
        },
    )


def _admin_refresh_token(body: dict[str, Any]) -> Response:
    """Mint a refresh token for POST /_sim/accounts {"kind": "refresh_token", ...}."""
    rt_state = body.get("state", "valid")
    plan = body.get("plan", "plus")
    account_id = body.get("account_id")
    rotate = body.get("rotate", True)
    access_state = body.get("access_state", "valid")
    clears_in = body.get("clears_in")
    if (
        rt_state not in REFRESH_STATES
        or not isinstance(plan, str)
        or not (account_id is None or isinstance(account_id, str))
        or not isinstance(rotate, bool)
        or access_state not in ACCOUNT_STATES
        or not is_optional_int(clears_in)
    ):
        return faults.json_response(400, {"detail": "bad refresh token request"})
    token = mint_refresh_token(
        state=rt_state,
        plan=plan,
        account_id=account_id,
        rotate=rotate,
        access_state=access_state,
        clears_in=clears_in,
    )
    grant = read_refresh_token(token)
    return faults.json_response(
        200,
        {
            "refresh_token": token,
            "state": grant.state,
            "plan": grant.plan,
            "account_id": grant.account_id,
            "rotate": grant.rotate,
            "access_state": grant.access_state,
        },
    )
