"""The simulated ChatGPT web backend as a Starlette app (spec sections 1–7).

The E2 send path lives here; the E3 endpoints are in e3.py, and the E3
`f/conversation` shares this module's conversation handler (`_send`), which
differs between eras only in the sentinel gate and in keeping the turn for
resume. `SimConfig.era` decides which paths are served.

It also serves the OAuth refresh endpoint (`POST /oauth/token`, spec 7.2), so
one sim base URL stands in for both chatgpt.com and auth.openai.com.

Request flow of a conversation POST, in order: record it (era `e3-strict`
refuses the E2 path here); take a fault (from a `#sim:fault=` directive or
the admin queue); edge faults (reset, cloudflare, slow); authentication; body
check; sentinel verification (requirements token, proof of work, challenges;
on E3 the conduit and finalized tokens); account state and account-level
faults; the conversation history checks (a follow-up's conversation and
parent); keeping the turn; then the SSE stream in the encoding the body asked
for. A queued script (`POST /_sim/script`) is taken only at that last step, so
a request that ends in an error (or the `moderation` fault) leaves it for the
next one.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import random
import time
import urllib.parse
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from chat2api.sim import e3, faults, webapp
from chat2api.sim import file_routes as files
from chat2api.sim.common import headers_of as _headers
from chat2api.sim.common import identify as _identify
from chat2api.sim.common import owner_of as _owner
from chat2api.sim.common import parse_json as _parse_json
from chat2api.sim.common import sim_state
from chat2api.sim.config import SimConfig
from chat2api.sim.file_routes import check_attachments, poll_image_tasks, record_received
from chat2api.sim.history import ROOT_ID, Conversation
from chat2api.sim.proofs import REQUIREMENTS_PREFIX
from chat2api.sim.records import (
    EchoMessage,
    Turn,
    finished_messages,
    render_legacy,
    render_v1,
    resume_token,
)
from chat2api.sim.replies import (
    content_text,
    parse_directives,
    reasoning_text,
    reply_text,
    split_chunks,
    title_text,
)
from chat2api.sim.shaped import shaped_script
from chat2api.sim.state import FAULTS, Requirements, Script, SimState
from chat2api.sim.streaming import EXTENSION, ConnectionReset, EventStream
from chat2api.sim.tokens import (
    ACCOUNT_STATES,
    REFRESH_STATES,
    Account,
    TokenError,
    is_optional_int,
    mint_access_token,
    mint_id_token,
    mint_refresh_token,
    read_access_token,
    read_refresh_token,
    rotate_refresh_token,
)
from chat2api.sim.tools import generate, image_task, wants_picture

STREAM_FAULTS = {"truncated": "close", "cut": "abort"}
STREAM_SHAPING_FAULTS = frozenset({"truncated", "cut", "malformed", "stream_error", "moderation"})
SCRIPT_FIELDS = frozenset({"reply", "reasoning", "chunks", "model_slug", "finish"})
MAX_LIST_LIMIT = 100
THINKING_EFFORTS = frozenset({"standard", "extended", "max"})


class SimApp(Starlette):
    """Starlette, plus the server's raw `send` in the scope (needed to reset connections)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Expose the server's own `send` before Starlette's middleware wraps it."""
        if scope["type"] == "http":
            scope.setdefault("extensions", {})[EXTENSION] = {"raw_send": send}
        await super().__call__(scope, receive, send)


# --------------------------------------------------------------------------- pages


async def session(request: Request) -> Response:
    """GET /api/auth/session — `{}` without the NextAuth cookie, else a minimal session."""
    webapp.count_hit(request)
    if not request.cookies.get("__Secure-next-auth.session-token"):
        return faults.json_response(200, {})
    account_id = str(uuid.uuid4())
    token = mint_access_token(account_id=account_id)
    user_id = read_access_token(token).user_id
    body = {
        "user": {"id": user_id, "name": "Ada", "email": "ada@example.com", "idp": "auth0"},
        "expires": "2099-01-01T00:00:00.000Z",
        "account": {"id": account_id, "planType": "plus", "structure": "personal"},
        "accessToken": token,
        "authProvider": "auth0",
    }
    return faults.json_response(200, body)


async def me(request: Request) -> Response:
    """GET /backend-api/me — the user behind the bearer token (counted in `hits` first)."""
    webapp.count_hit(request)
    who = _identify(request)
    if isinstance(who, Response):
        return who
    account = who or Account("user-anon", "", "free", "", 0, "valid", None)
    body: dict[str, Any] = {
        "object": "user",
        "id": account.user_id,
        "email": account.email,
        "name": "Ada",
        "picture": None,
        "created": 1700000000,
        "phone_number": None,
        "mfa_flag_enabled": False,
        "amr": [],
        "groups": [],
        "orgs": {
            "object": "list",
            "data": [
                {
                    "object": "organization",
                    "id": "org-sim",
                    "title": "Personal",
                    "personal": True,
                    "role": "owner",
                }
            ],
        },
        "has_payg_project_spend_limit": True,
    }
    return faults.json_response(200, body)


async def models(request: Request) -> Response:
    """GET /backend-api/models and /backend-anon/models — the configured catalogue."""
    state = sim_state(request)
    state.stats.models += 1
    who = _identify(request)
    if isinstance(who, Response):
        return who
    cfg = state.config
    items = [
        {
            "slug": slug,
            "max_tokens": 32767,
            "title": slug,
            "description": f"Simulated model {slug}",
            "tags": ["gpt4o"] if slug != "auto" else [],
            "capabilities": {},
            "product_features": {
                "attachments": {
                    "type": "retrieval",
                    "accepted_mime_types": ["text/plain", "application/pdf"],
                    "image_mime_types": ["image/png", "image/jpeg", "image/gif", "image/webp"],
                    "can_accept_all_mime_types": True,
                }
            },
            "enabled_tools": [],
        }
        for slug in cfg.models
    ]
    body = {
        "models": items,
        "categories": [
            {
                "category": "gpt_4",
                "human_category_name": "GPT",
                "subscription_level": "free",
                "default_model": cfg.default_model_slug,
            }
        ],
        "default_model_slug": cfg.default_model_slug,
    }
    return faults.json_response(200, body)


# --------------------------------------------------------------------------- sentinel


async def chat_requirements(request: Request) -> Response:
    """POST .../sentinel/chat-requirements — issue a token bound to a fresh PoW seed."""
    state = sim_state(request)
    cfg = state.config
    state.stats.requirements += 1
    body = _parse_json(await request.body())
    state.record(request.url.path, "POST", _headers(request), body)
    who = _identify(request)
    if isinstance(who, Response):
        return who
    p = body.get("p") if isinstance(body, dict) else None
    if cfg.require_p and not (isinstance(p, str) and p.startswith(REQUIREMENTS_PREFIX)):
        state.stats.rejected_sentinel += 1
        return faults.sentinel_rejected()
    persona = "chatgpt-noauth" if who is None else who.persona
    turnstile = cfg.turnstile_required or (bool(state.faults) and state.faults[0] == "turnstile")
    seed = repr(random.random())
    token = "gAAAAAB" + base64.urlsafe_b64encode(os.urandom(300)).decode("ascii")
    state.bind(
        token,
        Requirements(
            seed=seed,
            difficulty=cfg.pow_difficulty,
            algorithm=cfg.pow_hash,
            pow_required=cfg.pow_required,
            turnstile_required=turnstile,
            arkose_required=cfg.arkose_required,
            persona=persona,
            expires_at=time.time() + cfg.requirements_expire_after,
        ),
    )
    pow_block: dict[str, Any] = (
        {"required": True, "seed": seed, "difficulty": cfg.pow_difficulty}
        if cfg.pow_required
        else {"required": False, "seed": None, "difficulty": None}
    )
    answer = {
        "persona": persona,
        "token": token,
        "expire_after": cfg.requirements_expire_after,
        "arkose": {"required": cfg.arkose_required, "dx": _dx() if cfg.arkose_required else None},
        "turnstile": {"required": turnstile, "dx": _dx() if turnstile else None},
        "proofofwork": pow_block,
    }
    return faults.json_response(200, answer)


def _dx() -> str:
    return base64.b64encode(os.urandom(48)).decode("ascii")


def _check_sentinel(state: SimState, headers: dict[str, str]) -> Response | None:
    """Spec 3.4: the requirements token must be a known E2 one and its proof must pass."""
    issued = state.lookup(headers.get("openai-sentinel-chat-requirements-token"))
    if issued is None or issued.era != "e2":
        return faults.sentinel_rejected()
    if issued.pow_required and not e3.check_proof(
        state,
        headers.get("openai-sentinel-proof-token"),
        issued.seed,
        issued.difficulty,
        issued.algorithm,
        spend=True,
    ):
        return faults.sentinel_rejected()
    if issued.turnstile_required and not headers.get("openai-sentinel-turnstile-token"):
        return faults.challenge_required("turnstile")
    if issued.arkose_required and not headers.get("openai-sentinel-arkose-token"):
        return faults.challenge_required("arkose")
    return None


# --------------------------------------------------------------------------- conversation


def _echoes(body: dict[str, Any]) -> list[EchoMessage]:
    out: list[EchoMessage] = []
    messages = body.get("messages")
    for m in messages if isinstance(messages, list) else []:
        if not isinstance(m, dict):
            continue
        author = m.get("author")
        role = author.get("role") if isinstance(author, dict) else None
        content = m.get("content")
        metadata = m.get("metadata")
        out.append(
            EchoMessage(
                id=str(m.get("id") or uuid.uuid4()),
                role=role if isinstance(role, str) else "user",
                content=content if isinstance(content, dict) else {"content_type": "text"},
                metadata=metadata if isinstance(metadata, dict) else {},
            )
        )
    return out


def is_reasoning(model: str, system_hints: object) -> bool:
    """Whether a request gets a thoughts message before the answer."""
    if "thinking" in model or model.startswith(("o1", "o3", "o4")):
        return True
    return isinstance(system_hints, list) and "reason" in system_hints


async def conversation(request: Request) -> Response | EventStream | ConnectionReset:
    """POST .../conversation — the E2 send: verify it and stream the answer."""
    return await _send(request, e3_path=False)


async def f_conversation(request: Request) -> Response | EventStream | ConnectionReset:
    """POST .../f/conversation — the E3 send (conduit token, finalized requirements)."""
    return await _send(request, e3_path=True)


async def _send(request: Request, *, e3_path: bool) -> Response | EventStream | ConnectionReset:
    """Both eras' conversation POST; they differ in the sentinel gate and in resumability."""
    state = sim_state(request)
    cfg = state.config
    state.stats.conversations += 1
    state.stats.e3_conversations += e3_path
    headers = _headers(request)
    body = _parse_json(await request.body())
    state.record(request.url.path, "POST", headers, body)
    if e3_path and cfg.era == "e2":
        return faults.not_found()
    if cfg.era == "e3-strict" and not e3_path:
        # 2026 captures: the legacy path is refused before anything else is looked at.
        return faults.unusual_activity()
    echoes = _echoes(body) if isinstance(body, dict) else []
    users = [e for e in echoes if e.role == "user"]
    directives = parse_directives(content_text(users[-1].content) if users else "")
    fault = directives.fault or state.next_fault()
    if fault is not None:
        if fault not in FAULTS:
            return faults.json_response(400, {"detail": f"Unknown sim fault: {fault}"})
        state.stats.faults_injected += 1

    if fault == "reset":
        return ConnectionReset()
    if fault == "cloudflare":
        return faults.cloudflare()
    if fault == "slow":
        await asyncio.sleep(cfg.slow_seconds)

    who = _identify(request)
    if isinstance(who, Response):
        return who
    if not isinstance(body, dict) or "_unparsed" in body:
        return faults.json_response(422, {"detail": "Invalid conversation body"})
    action = body.get("action", "next")
    if action not in ("next", "variant", "continue") or (action == "next" and not users):
        return faults.json_response(422, {"detail": "Invalid conversation body"})
    if body.get("thinking_effort", "standard") not in THINKING_EFFORTS:
        return faults.json_response(422, {"detail": "Invalid conversation body"})

    conduit_token = ""
    if e3_path:
        gate = e3.check_send(state, headers, _owner(who, headers), fault)
        if isinstance(gate, Response):
            state.stats.rejected_sentinel += 1
            return gate
        conduit_token = gate
    elif fault == "conduit_rejected":  # on E2: refused as a bad sentinel token would be
        state.stats.rejected_sentinel += 1
        return faults.sentinel_rejected()
    elif cfg.require_sentinel:
        refusal = _check_sentinel(state, headers)
        if refusal is not None:
            state.stats.rejected_sentinel += 1
            return refusal
    if fault == "turnstile" and not headers.get("openai-sentinel-turnstile-token"):
        return faults.challenge_required("turnstile")

    if who is not None and who.state == "rate_limited":
        return faults.rate_limited(who.clears_in or cfg.rate_limit_clears_in)
    if who is not None and who.state == "flagged":
        return faults.unusual_activity()
    if fault == "rate_limited":
        return faults.rate_limited(cfg.rate_limit_clears_in)
    if fault == "expired":
        return faults.token_expired()
    if fault == "unusual_activity":
        return faults.unusual_activity()
    if fault == "server_error":
        return faults.server_error()

    owner = _owner(who, headers)
    given = body.get("conversation_id")
    if given is not None and given != "" and not isinstance(given, str):
        return faults.json_response(422, {"detail": "Invalid conversation body"})
    kept: Conversation | None = None
    prompt = directives.prompt
    if given:
        kept = state.conversations.get(given, owner)
        if kept is None:
            state.stats.conversation_not_found += 1
            return faults.conversation_not_found()
        parent = body.get("parent_message_id")
        if not isinstance(parent, str) or parent not in kept.nodes:
            return faults.message_not_found()
        state.last_history = kept.seen_branch(parent)
        if not users and action == "variant":
            # Regenerate: answer the branch's last user message again.
            asked = [t for r, t in state.last_history if r == "user"]
            again = parse_directives(asked[-1] if asked else "")
            prompt = again.prompt
            directives = dataclasses.replace(directives, kind=again.kind)
    messages = body.get("messages")
    kind = directives.kind
    if kind is None and wants_picture(body, messages):
        kind = "image_async"
    if fault == "moderation":
        kind = None
    temporary = body.get("history_and_training_disabled") is not False
    # A picture_v2 turn is kept even in a temporary chat, so its image can be polled.
    keep = kept is not None or not temporary or kind == "image_async"
    if keep:
        clash = _clashing_id(echoes, kept, body)
        if clash is not None:
            return faults.duplicate_message_id(clash)
    refusal = check_attachments(state, messages, owner)
    if refusal is not None:
        return refusal

    # Taken here, with no await since the checks: FIFO in the order streams start.
    script = None if fault == "moderation" or kind is not None else state.next_script()
    if script is not None:
        state.stats.scripted += 1
    elif fault != "moderation" and kind is None:
        script = shaped_script(state.last_prompt())  # `#sim:json=`, `#sim:call=`
    turn = _turn(cfg, body, echoes, prompt, directives.words, who, fault, script, kept)
    if kind is not None:
        turn = generate(state, turn, kind, prompt, owner, messages)
    if keep:
        _keep_turn(state, turn, body, owner, kept, listed=not temporary)
        task = image_task(turn, owner)
        if task is not None and turn.fault not in ("stream_error", *STREAM_FAULTS):
            state.image_tasks[task.file_id] = task
    record_received(state, turn.conversation_id, messages)
    encodings = body.get("supported_encodings")
    v1 = isinstance(encodings, list) and "v1" in encodings
    rendered = render_v1(turn) if v1 else render_legacy(turn)
    delay = cfg.chunk_delay if directives.delay_ms is None else directives.delay_ms / 1000
    if rendered.complete and (e3_path or fault in e3.RESUMABLE_CUTS):
        live = e3.live_turn(
            state,
            conversation_id=turn.conversation_id,
            owner=owner,
            conduit_token=conduit_token,
            resume_token=resume_token(turn),
            records=rendered.records,
            delay=delay,
            fault=fault,
        )
        if e3_path:
            state.turns.add(live, cfg.resume_window)
        return e3.turn_stream(state, live, 0, first=True)
    ending = "complete" if rendered.complete else STREAM_FAULTS.get(fault or "", "close")
    return EventStream(rendered.records, state.stats, delay=delay, ending=ending)


def _clashing_id(
    echoes: list[EchoMessage], kept: Conversation | None, body: dict[str, Any]
) -> str | None:
    """A message id of the request that is already taken (in the request, tree or root)."""
    taken: set[str] = set(kept.nodes) if kept is not None else {_root_id(body)}
    for echo in echoes:
        if echo.id in taken:
            return echo.id
        taken.add(echo.id)
    return None


def _root_id(body: dict[str, Any]) -> str:
    parent = body.get("parent_message_id")
    return parent if isinstance(parent, str) and parent else ROOT_ID


def _keep_turn(
    state: SimState,
    turn: Turn,
    body: dict[str, Any],
    owner: str,
    kept: Conversation | None,
    *,
    listed: bool = True,
) -> None:
    """Store the turn's messages (and, unless the stream cannot finish, its answer)."""
    now = turn.create_time
    model = body.get("model")
    model = model if isinstance(model, str) and model else "auto"
    if kept is None:
        kept = Conversation.start(
            turn.conversation_id, owner, _root_id(body), turn.title, model, now
        )
        kept.listed = listed
        state.stats.conversations_kept += 1
        parent = kept.root
    else:
        state.stats.follow_ups += 1
        parent = str(body["parent_message_id"])
    kept.model = model
    kept.append(parent, finished_messages(turn), now)
    state.conversations.keep(kept, state.config.max_conversations)


def _turn(
    cfg: SimConfig,
    body: dict[str, Any],
    echoes: list[EchoMessage],
    prompt: str,
    words: int | None,
    who: Account | None,
    fault: str | None,
    script: Script | None = None,
    kept: Conversation | None = None,
) -> Turn:
    requested = body.get("model")
    requested = requested if isinstance(requested, str) and requested else "auto"
    slug = cfg.auto_model if requested == "auto" else requested
    if body.get("action") == "continue" and not prompt:
        prompt = "continue"
    finish = "max_tokens" if fault == "max_tokens" else "stop"
    thoughts: tuple[str, ...] | None = None
    if script is not None:
        # Exactly what the test asked for: no hashed reply, no automatic reasoning.
        chunks = (
            script.chunks
            if script.chunks is not None
            else split_chunks(script.reply, cfg.chunk_words)
        )
        if script.reasoning is not None:
            thoughts = tuple(split_chunks(script.reasoning, cfg.chunk_words))
        slug = script.model_slug or slug
        finish = "max_tokens" if fault == "max_tokens" else script.finish
    else:
        reply = reply_text(prompt, cfg.reply_words if words is None else words)
        chunks = split_chunks(reply, cfg.chunk_words)
        if is_reasoning(requested, body.get("system_hints")):
            thoughts = tuple(split_chunks(reasoning_text(prompt), cfg.chunk_words))
    conversation_id = kept.id if kept is not None else None
    parent = echoes[-1].id if echoes else str(body.get("parent_message_id") or uuid.uuid4())
    history: tuple[EchoMessage, ...] = ()
    if kept is not None:
        # v1 re-adds the message the new ones hang under (spec 5.3.2), e.g. the last answer.
        node = kept.nodes[str(body["parent_message_id"])]
        if node.message is not None:
            m = node.message
            history = (EchoMessage(node.id, node.role, m["content"], m["metadata"]),)
    return Turn(
        conversation_id=conversation_id or str(uuid.uuid4()),
        new_conversation=conversation_id is None,
        model_slug=slug,
        default_model_slug=cfg.default_model_slug,
        plan_type=who.plan if who is not None else "free",
        echoes=tuple(echoes),
        parent_id=parent,
        chunks=tuple(chunks),
        thought_chunks=thoughts,
        title=title_text(prompt),
        finish_type=finish,
        fault=fault if fault in STREAM_SHAPING_FAULTS else None,
        history=history,
    )


# --------------------------------------------------------------------------- history


async def get_conversation(request: Request) -> Response:
    """GET .../conversation/{id} — a kept conversation (spec 1.8) for its owner, else 404."""
    state = sim_state(request)
    state.stats.conversation_gets += 1
    who = _identify(request)
    if isinstance(who, Response):
        return who
    conv = state.conversations.get(request.path_params["id"], _owner(who, _headers(request)))
    if conv is None:
        state.stats.conversation_not_found += 1
        return faults.conversation_not_found()
    poll_image_tasks(state, conv, time.time())
    return faults.json_response(200, conv.detail())


async def list_conversations(request: Request) -> Response:
    """GET .../conversations?offset&limit&order — the owner's kept conversations, newest first."""
    state = sim_state(request)
    state.stats.conversation_lists += 1
    who = _identify(request)
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
    mine = state.conversations.owned_by(_owner(who, _headers(request)), order)
    body = {
        "items": [c.summary() for c in mine[offset : offset + limit]],
        "total": len(mine),
        "limit": limit,
        "offset": offset,
        "has_missing_conversations": False,
    }
    return faults.json_response(200, body)


# --------------------------------------------------------------------------- oauth

OAUTH_SCOPE = "openid profile email offline_access"
OAUTH_EXPIRES_IN = 864000
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


def _oauth_error(status: int, error: str, description: str) -> Response:
    return faults.json_response(
        status, {"error": error, "error_description": description}, headers=NO_STORE
    )


def _parse_token_body(raw: bytes, content_type: str) -> dict[str, Any] | None:
    """The body of a token request: JSON (mobile form) or form-urlencoded (Codex form)."""
    if "application/x-www-form-urlencoded" in content_type or not raw.lstrip().startswith(b"{"):
        try:
            pairs = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return None
        return dict(pairs)
    parsed = _parse_json(raw)
    return parsed if isinstance(parsed, dict) and "_unparsed" not in parsed else None


async def oauth_token(request: Request) -> Response:
    """POST /oauth/token — exchange a refresh token (spec 7.2), rotating it when it says so."""
    state = sim_state(request)
    cfg = state.config
    state.stats.refreshes += 1
    headers = _headers(request)
    body = _parse_token_body(await request.body(), headers.get("content-type", ""))
    state.record(request.url.path, "POST", headers, body)
    if cfg.refresh_delay:
        await asyncio.sleep(cfg.refresh_delay)
    if state.next_refresh_fault() is not None:
        state.stats.faults_injected += 1
        return _oauth_error(500, "server_error", "The authorization server had an internal error.")

    if body is None:
        return _oauth_error(400, "invalid_request", "The request body could not be parsed.")
    if body.get("grant_type") != "refresh_token":
        return _oauth_error(400, "unsupported_grant_type", "Only refresh_token is supported.")
    client_id = body.get("client_id")
    token = body.get("refresh_token")
    if not isinstance(client_id, str) or not client_id:
        return _oauth_error(400, "invalid_request", "Missing client_id.")
    if not isinstance(token, str) or not token:
        return _oauth_error(400, "invalid_request", "Missing refresh_token.")
    try:
        grant = read_refresh_token(token)
    except TokenError:
        return _oauth_error(400, "invalid_grant", "Invalid refresh token.")
    if grant.state == "revoked":
        return _oauth_error(400, "invalid_grant", "The refresh token has been revoked.")
    # Check and retire in one step (no await in between): of concurrent uses, one wins.
    if token in state.used_refresh_tokens or (
        grant.rotate and not state.spend_refresh_token(token)
    ):
        return _oauth_error(
            400,
            "invalid_grant",
            "Your refresh token has already been used to generate a new access token. "
            "Please try signing in again.",
        )
    access = mint_access_token(
        state=grant.access_state,
        plan=grant.plan,
        account_id=grant.account_id,
        expires_in=OAUTH_EXPIRES_IN,
        clears_in=grant.clears_in,
        user_id=grant.user_id(),
    )
    answer = {
        "access_token": access,
        "refresh_token": rotate_refresh_token(grant) if grant.rotate else token,
        "id_token": mint_id_token(grant, client_id),
        "scope": OAUTH_SCOPE,
        "expires_in": OAUTH_EXPIRES_IN,
        "token_type": "Bearer",
    }
    return faults.json_response(200, answer, headers=NO_STORE)


# --------------------------------------------------------------------------- admin


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
        body = _parse_json(await request.body())
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
        changes = _parse_json(await request.body())
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
    body = _parse_json(await request.body())
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
    body = _parse_json(await request.body()) or {}
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


def create_sim_app(config: SimConfig | None = None) -> SimApp:
    """Build the simulator; its state is reachable as `app.state.sim` (a SimState)."""
    cfg = config or SimConfig()
    cfg.validate()
    routes = [
        *webapp.routes(),
        Route("/api/auth/session", session, methods=["GET"]),
        Route("/backend-api/me", me, methods=["GET"]),
        Route("/backend-api/models", models, methods=["GET"]),
        Route("/backend-anon/models", models, methods=["GET"]),
        Route("/backend-api/sentinel/chat-requirements", chat_requirements, methods=["POST"]),
        Route("/backend-anon/sentinel/chat-requirements", chat_requirements, methods=["POST"]),
        Route("/backend-api/conversation", conversation, methods=["POST"]),
        Route("/backend-anon/conversation", conversation, methods=["POST"]),
        Route("/backend-api/f/conversation", f_conversation, methods=["POST"]),
        Route("/backend-anon/f/conversation", f_conversation, methods=["POST"]),
        *e3.routes(),
        Route("/backend-api/conversation/{id}", get_conversation, methods=["GET"]),
        Route(
            "/backend-api/conversation/{cid}/attachment/{file_id}/download",
            files.attachment_download,
            methods=["GET"],
        ),
        Route(
            "/backend-anon/conversation/{cid}/attachment/{file_id}/download",
            files.attachment_download,
            methods=["GET"],
        ),
        Route(
            "/backend-api/conversation/{cid}/interpreter/download",
            files.interpreter_download,
            methods=["GET"],
        ),
        Route(
            "/backend-anon/conversation/{cid}/interpreter/download",
            files.interpreter_download,
            methods=["GET"],
        ),
        Route("/backend-anon/conversation/{id}", get_conversation, methods=["GET"]),
        Route("/backend-api/conversations", list_conversations, methods=["GET"]),
        Route("/backend-api/files", files.create_file, methods=["POST"]),
        Route("/backend-api/files/download/{file_id}", files.file_download, methods=["GET"]),
        Route("/backend-api/files/{file_id}", files.get_file, methods=["GET"]),
        Route("/backend-api/files/{file_id}/uploaded", files.file_uploaded, methods=["POST"]),
        Route("/backend-api/files/{file_id}/download", files.file_download, methods=["GET"]),
        Route("/backend-anon/files/{file_id}/download", files.file_download, methods=["GET"]),
        Route("/_blob/{file_id}", files.blob_put, methods=["PUT"]),
        Route("/_blob/{file_id}", files.blob_get, methods=["GET"]),
        Route("/_sim/files", files.admin_files, methods=["GET"]),
        Route("/backend-anon/conversations", list_conversations, methods=["GET"]),
        Route("/oauth/token", oauth_token, methods=["POST"]),
        Route("/_sim/requests", admin_requests, methods=["GET"]),
        Route("/_sim/stats", admin_stats, methods=["GET"]),
        Route("/_sim/reset", admin_reset, methods=["POST"]),
        Route("/_sim/config", admin_config, methods=["GET", "POST"]),
        Route("/_sim/faults", admin_faults, methods=["POST"]),
        Route("/_sim/script", admin_script, methods=["GET", "POST"]),
        Route("/_sim/last_prompt", admin_last_prompt, methods=["GET"]),
        Route("/_sim/accounts", admin_accounts, methods=["POST"]),
    ]
    app = SimApp(routes=routes)
    app.state.sim = SimState(config=cfg)
    return app
