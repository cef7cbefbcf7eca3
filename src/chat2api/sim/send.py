"""The conversation POST of both eras (spec 1.3–1.5, 4, 5): check it, keep it, stream it.

`POST …/conversation` is the E2 send and `POST …/f/conversation` the E3 one;
they differ only in the sentinel gate (sentinel.py for E2, `e3.check_send`
for E3) and in keeping the turn for resume. `SimConfig.era` decides which
paths are served.

Request flow, in order: record it (era `e3-strict` refuses the E2 path here);
take a fault (from a `#sim:fault=` directive or the admin queue); edge faults
(reset, cloudflare, slow); authentication; body check; sentinel verification
(requirements token, proof of work, challenges; on E3 the conduit and
finalized tokens); account state and account-level faults; the conversation
history checks (a follow-up's conversation and parent); keeping the turn;
then the SSE stream in the encoding the body asked for. A queued script
(`POST /_sim/script`) is taken only at that last step, so a request that ends
in an error (or the `moderation` fault) leaves it for the next one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from chat2api.sim import e3, faults
from chat2api.sim.common import headers_of, identify, owner_of, parse_json, sim_state
from chat2api.sim.config import SimConfig
from chat2api.sim.file_routes import check_attachments, record_received
from chat2api.sim.history import ROOT_ID, Conversation
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
from chat2api.sim.sentinel import check_sentinel
from chat2api.sim.shaped import shaped_script
from chat2api.sim.state import FAULTS, Script, SimState
from chat2api.sim.streaming import ConnectionReset, EventStream
from chat2api.sim.tokens import Account
from chat2api.sim.tools import generate, image_task, wants_picture

STREAM_FAULTS = {"truncated": "close", "cut": "abort"}
STREAM_SHAPING_FAULTS = frozenset({"truncated", "cut", "malformed", "stream_error", "moderation"})
THINKING_EFFORTS = frozenset({"standard", "extended", "max"})


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
    headers = headers_of(request)
    body = parse_json(await request.body())
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

    who = identify(request)
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
        gate = e3.check_send(state, headers, owner_of(who, headers), fault)
        if isinstance(gate, Response):
            state.stats.rejected_sentinel += 1
            return gate
        conduit_token = gate
    elif fault == "conduit_rejected":  # on E2: refused as a bad sentinel token would be
        state.stats.rejected_sentinel += 1
        return faults.sentinel_rejected()
    elif cfg.require_sentinel:
        refusal = check_sentinel(state, headers)
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

    owner = owner_of(who, headers)
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
