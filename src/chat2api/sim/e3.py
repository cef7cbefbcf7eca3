"""The E3 send path (spec 1.4, 1.5, 3.3–3.6, 4.2), written from the spec alone.

One send, in order: `sentinel/chat-requirements/prepare` (requirements token
`p` → `prepare_token` + FNV challenge), `…/finalize` (the proof, checked here
against the seed and difficulty issued with that prepare token → the
chat-requirements token), `f/conversation/prepare` (→ conduit token), then
`f/conversation` (the conversation handler in send.py, which calls
`check_send` in place of the E2 sentinel check). Every token is bound to its
owner (the token's user and account, or the anonymous device id) and is good
for one use; a rejected token or proof is a 403 with an empty body, as the
real `/f/conversation` answers (spec 3.3, CG2A-GROK 1.8.4).

Turns started on `f/conversation` are kept in `state.turns` (turns.py) for
`f/conversation/resume`, `stop_conversation` and `stream_status`. In era
`e2` every endpoint here answers 404.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from chat2api.sim import faults
from chat2api.sim.common import headers_of, identify, owner_of, parse_json, sim_state
from chat2api.sim.config import SimConfig
from chat2api.sim.proofs import REQUIREMENTS_PREFIX, Verdict, verify_proof
from chat2api.sim.state import Conduit, Prepared, Requirements, SimState
from chat2api.sim.streaming import ConnectionReset, EventStream
from chat2api.sim.tokens import Account
from chat2api.sim.turns import LiveTurn

E3_HASH = "fnv"
NO_TOKEN = "no-token"
DELTA_ENCODING = b'event: delta_encoding\ndata: "v1"\n\n'
# Faults that break a stream after `cut_after_events` events and leave it resumable.
RESUMABLE_CUTS = {"cut_resumable": "abort", "truncated_resumable": "close"}
REQUIREMENTS_HEADER = "openai-sentinel-chat-requirements-token"
PROOF_HEADER = "openai-sentinel-proof-token"


def opaque(size: int) -> str:
    """An opaque sentinel-style token (`gAAAAAB` + base64url), like the real Fernet ones."""
    return "gAAAAAB" + base64.urlsafe_b64encode(os.urandom(size)).decode("ascii")


def dx() -> str:
    """A challenge's opaque ``dx`` blob."""
    return base64.b64encode(os.urandom(48)).decode("ascii")


def pow_block(config: SimConfig, seed: str) -> dict[str, Any]:
    """The ``proofofwork`` object of a requirements answer (E2 and E3 alike)."""
    if config.pow_required:
        return {"required": True, "seed": seed, "difficulty": config.pow_difficulty}
    return {"required": False, "seed": None, "difficulty": None}


async def _start(request: Request, counter: str) -> tuple[SimState, dict[str, str], Any]:
    """Count, read and record one E3 request."""
    state = sim_state(request)
    setattr(state.stats, counter, getattr(state.stats, counter) + 1)
    headers = headers_of(request)
    body = parse_json(await request.body())
    state.record(request.url.path, request.method, headers, body)
    return state, headers, body


def _step_fault(state: SimState, step: str) -> str | None:
    fault = state.next_step_fault(step)
    if fault is not None:
        state.stats.faults_injected += 1
    return fault


async def _edge(state: SimState, fault: str | None) -> Response | ConnectionReset | None:
    """The answer of a `<step>:<fault>` fault (None: `slow`, after its sleep, or no such fault)."""
    kind = (fault or "").partition(":")[2]
    if kind == "slow":
        await asyncio.sleep(state.config.slow_seconds)
    answers: dict[str, Callable[[], Response | ConnectionReset]] = {
        "server_error": faults.server_error,
        "rate_limited": lambda: faults.rate_limited(state.config.rate_limit_clears_in),
        "expired": faults.token_expired,
        "unusual_activity": faults.unusual_activity,
        "cloudflare": faults.cloudflare,
        "reset": ConnectionReset,
    }
    answer = answers.get(kind)
    return answer() if answer is not None else None


def _take_turnstile(state: SimState) -> bool:
    """A queued `turnstile` fault at the head of the conversation queue is this send's."""
    if state.faults and state.faults[0] == "turnstile":
        state.faults.popleft()
        state.stats.faults_injected += 1
        return True
    return False


CLIENT_HEADERS = ("oai-device-id", "oai-language", "oai-session-id", "oai-client-version")


def client_headers_refusal(state: SimState, headers: dict[str, str]) -> Response | None:
    """With `require_client_headers`: 403 unusual activity unless the E3 headers look right.

    The real server's rule is not known (spec 2 marks these [L]); this checks
    that a client sends them all and took its client version from the home
    page (`data-build`).
    """
    if not state.config.require_client_headers:
        return None
    if any(not headers.get(name) for name in CLIENT_HEADERS):
        return faults.unusual_activity()
    if headers["oai-client-version"] != state.config.build_id:
        return faults.unusual_activity()
    return None


def check_proof(
    state: SimState, proof: object, seed: str, difficulty: str, algorithm: str, *, spend: bool
) -> bool:
    """Spec 3.4 against an issued seed; `spend` also refuses (and records) a reused proof."""
    token = proof if isinstance(proof, str) else None
    verdict = verify_proof(token, seed, difficulty, algorithm)
    if verdict is Verdict.GIVEN_UP and not state.config.reject_given_up_proof:
        verdict = Verdict.OK
    if verdict is Verdict.OK and token and spend and state.config.reject_reused_proof:
        # Keyed with the seed: two sends may well find the same nonce for different seeds.
        verdict = Verdict.OK if state.spend_proof(seed + "\n" + token) else Verdict.REUSED
    return verdict is Verdict.OK


@dataclass(frozen=True, slots=True)
class _Step:
    """One E3 request past the checks every step makes first."""

    state: SimState
    headers: dict[str, str]
    body: Any
    who: Account | None
    fault: str | None  # this step's queued fault, if it did not answer already


async def _open_step(
    request: Request,
    counter: str,
    step: str,
    *,
    early: Mapping[str, Callable[[], Response]] = MappingProxyType({}),
    client_headers: bool = True,
) -> _Step | Response | ConnectionReset:
    """Count and record the request, then check, in order: the era (E2 has no E3
    endpoints), the step's own faults (``early``), its `<step>:<kind>` fault, who
    asks, and (``client_headers``) the client headers; the first refusal is the answer.
    """
    state, headers, body = await _start(request, counter)
    if state.config.era == "e2":
        return faults.not_found()
    fault = _step_fault(state, step)
    if fault is not None and fault in early:
        return early[fault]()
    edge = await _edge(state, fault)
    if edge is not None:
        return edge
    who = identify(request)
    if isinstance(who, Response):
        return who
    if client_headers and (refusal := client_headers_refusal(state, headers)) is not None:
        return refusal
    return _Step(state, headers, body, who, fault)


# --------------------------------------------------------------------------- sentinel


async def sentinel_prepare(request: Request) -> Response | ConnectionReset:
    """POST …/sentinel/chat-requirements/prepare — a prepare token bound to an FNV challenge."""
    step = await _open_step(request, "prepares", "prepare", early={"prepare_404": faults.not_found})
    if not isinstance(step, _Step):
        return step
    state, headers, body, who, fault = step.state, step.headers, step.body, step.who, step.fault
    cfg = state.config
    p = body.get("p") if isinstance(body, dict) else None
    if cfg.require_p and not (isinstance(p, str) and p.startswith(REQUIREMENTS_PREFIX)):
        state.stats.rejected_sentinel += 1
        return faults.sentinel_rejected()
    persona = "chatgpt-noauth" if who is None else who.persona
    turnstile = _take_turnstile(state) or cfg.turnstile_required
    so = cfg.so_required or fault == "so_required"
    force_login = cfg.force_login or fault == "force_login"
    seed = repr(random.random())
    token = opaque(240)
    state.prepare(
        token,
        Prepared(
            owner=owner_of(who, headers),
            seed=seed,
            difficulty=cfg.pow_difficulty,
            pow_required=cfg.pow_required,
            turnstile_required=turnstile,
            so_required=so,
            force_login=force_login,
            persona=persona,
            expires_at=time.time() + cfg.requirements_expire_after,
        ),
    )
    answer = {
        "persona": persona,
        "prepare_token": token,
        "proofofwork": pow_block(cfg, seed),
        "turnstile": {"required": turnstile, "dx": dx() if turnstile else None},
        "so": {
            "required": so,
            "collector_dx": dx() if so else None,
            "snapshot_dx": dx() if so else None,
        },
        "force_login": force_login,
    }
    return faults.json_response(200, answer)


async def sentinel_finalize(request: Request) -> Response | ConnectionReset:
    """POST …/sentinel/chat-requirements/finalize — spend a prepare token, check its proof."""
    step = await _open_step(
        request, "finalizes", "finalize", early={"finalize_403": faults.sentinel_rejected}
    )
    if not isinstance(step, _Step):
        return step
    state, headers, body, who = step.state, step.headers, step.body, step.who
    cfg = state.config
    if not isinstance(body, dict) or "_unparsed" in body:
        return faults.json_response(422, {"detail": "Invalid finalize body"})
    owner = owner_of(who, headers)
    prepared = state.take_prepared(body.get("prepare_token"))
    if prepared is None or prepared.owner != owner:
        state.stats.rejected_sentinel += 1
        return faults.sentinel_rejected()
    if prepared.force_login:
        return faults.challenge_required("force_login")
    if prepared.so_required:
        return faults.challenge_required("so")
    if prepared.turnstile_required and not body.get("turnstile"):
        return faults.challenge_required("turnstile")
    if prepared.pow_required and not check_proof(
        state, body.get("proofofwork"), prepared.seed, prepared.difficulty, E3_HASH, spend=True
    ):
        state.stats.rejected_sentinel += 1
        return faults.sentinel_rejected()
    token = opaque(300)
    so_token = opaque(120) if cfg.issue_so_token else None
    state.bind(
        token,
        Requirements(
            seed=prepared.seed,
            difficulty=prepared.difficulty,
            algorithm=E3_HASH,
            pow_required=prepared.pow_required,
            turnstile_required=prepared.turnstile_required,
            arkose_required=False,
            persona=prepared.persona,
            expires_at=time.time() + cfg.requirements_expire_after,
            owner=owner,
            era="e3",
            so_token=so_token,
            proof=body.get("proofofwork") if prepared.pow_required else None,
        ),
    )
    answer: dict[str, Any] = {
        "persona": prepared.persona,
        "token": token,
        "expire_after": cfg.requirements_expire_after,
    }
    if so_token is not None:
        answer["so_token"] = so_token
    return faults.json_response(200, answer)


# --------------------------------------------------------------------------- conduit


def _conduit_token() -> str:
    # Opaque to clients; JWT-shaped like the real one.
    return "eyJhbGciOiJIUzI1NiJ9." + os.urandom(24).hex() + "." + uuid.uuid4().hex


async def conduit_prepare(request: Request) -> Response | ConnectionReset:
    """POST …/f/conversation/prepare — a conduit token for the next send (spec 4.2)."""
    step = await _open_step(
        request, "conduits", "conduit", early={"conduit_prepare_404": faults.not_found}
    )
    if not isinstance(step, _Step):
        return step
    state, headers, body, who = step.state, step.headers, step.body, step.who
    cfg = state.config
    if body is not None and (not isinstance(body, dict) or "_unparsed" in body):
        return faults.json_response(422, {"detail": "Invalid prepare body"})
    previous = headers.get("x-conduit-token")
    if not previous:
        return faults.json_response(400, {"detail": "Missing X-Conduit-Token header"})
    owner = owner_of(who, headers)
    if previous != NO_TOKEN and state.conduit_of(previous, owner) is not None:
        del state.conduits[previous]  # retired by its successor
    token = _conduit_token()
    state.issue_conduit(
        token, Conduit(owner=owner, expires_at=time.time() + cfg.conduit_expire_after)
    )
    return faults.json_response(200, {"conduit_token": token})


def check_send(
    state: SimState, headers: dict[str, str], owner: str, fault: str | None
) -> Response | str:
    """Gate of `f/conversation`: the refusal, or the conduit token it spent.

    Needs a live conduit token of the owner in `X-Conduit-Token` and (unless
    `require_sentinel` is off, which also skips the conduit) a
    chat-requirements token that `finalize` issued to the owner, with a proof
    that passes its seed and the challenge headers it was issued with. Both
    tokens are spent only when every check passes.
    """
    refusal = client_headers_refusal(state, headers)
    if refusal is not None:
        return refusal
    conduit_token = headers.get("x-conduit-token", "")
    if not state.config.require_sentinel:
        return faults.sentinel_rejected() if fault == "conduit_rejected" else conduit_token
    if fault == "conduit_rejected" or state.conduit_of(conduit_token, owner) is None:
        return faults.sentinel_rejected()
    requirements_token = headers.get(REQUIREMENTS_HEADER)
    issued = state.lookup(requirements_token)
    if issued is None or issued.era != "e3" or issued.owner != owner:
        return faults.sentinel_rejected()
    proof = headers.get(PROOF_HEADER)
    # The proof finalize accepted needs no second hash; any other must pass the same seed.
    if (
        issued.pow_required
        and proof != issued.proof
        and not check_proof(
            state, proof, issued.seed, issued.difficulty, issued.algorithm, spend=False
        )
    ):
        return faults.sentinel_rejected()
    if issued.turnstile_required and not headers.get("openai-sentinel-turnstile-token"):
        return faults.challenge_required("turnstile")
    if issued.so_token is not None and headers.get("openai-sentinel-so-token") != issued.so_token:
        return faults.sentinel_rejected()
    del state.conduits[conduit_token]
    state.spend(requirements_token)
    return conduit_token


# --------------------------------------------------------------------------- turns


def live_turn(
    state: SimState,
    *,
    conversation_id: str,
    owner: str,
    conduit_token: str,
    resume_token: str,
    records: list[bytes],
    delay: float,
    fault: str | None,
) -> LiveTurn:
    """A turn whose streams can be resumed (offsets index `records`, see turns.py)."""
    header = records[0] if records and records[0] == DELTA_ENCODING else None
    cfg = state.config
    breaking = RESUMABLE_CUTS.get(fault or "")
    return LiveTurn(
        conversation_id=conversation_id,
        owner=owner,
        conduit_token=conduit_token,
        resume_token=resume_token,
        header=header,
        events=list(records),
        delay=delay,
        cut_after=cfg.cut_after_events if breaking is not None else None,
        cut_ending=breaking or "abort",
        cuts_left=cfg.resume_cuts,
    )


def turn_stream(state: SimState, live: LiveTurn, start: int, *, first: bool) -> EventStream:
    """One stream of a turn from event `start`; it breaks as the turn's fault says."""
    breaks = live.cut_after is not None and (first or live.cuts_left > 0)
    end = live.stream_end(start, breaks)
    if not first:
        if end < len(live.events):
            live.cuts_left -= 1
        live.state, live.ended_at = "streaming", None
    # Resumed after the first record: the encoding again, so the body reads on its own.
    again = [live.header] if live.header is not None and start > 0 else []
    records = again + live.events[start:end]
    ending = "complete" if end == len(live.events) else live.cut_ending
    return EventStream(
        records, state.stats, delay=live.delay, ending=ending, stop=live.stop, on_end=live.ended
    )


def _conversation_id(body: object) -> str | None:
    cid = body.get("conversation_id") if isinstance(body, dict) else None
    return cid if isinstance(cid, str) and cid else None


async def resume(request: Request) -> Response | ConnectionReset | EventStream:
    """POST …/f/conversation/resume — the turn again, from record `offset` on.

    `X-Conduit-Token` may be the turn's `resume_conversation_token`, the conduit
    token it was sent with, or any live conduit token of the caller (spent).
    """
    step = await _open_step(
        request,
        "resumes",
        "resume",
        early={"resume_404": faults.not_found},
        client_headers=False,
    )
    if not isinstance(step, _Step):
        return step
    state, headers, body, who = step.state, step.headers, step.body, step.who
    cfg = state.config
    cid = _conversation_id(body)
    offset = body.get("offset") if isinstance(body, dict) else None
    if cid is None or isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        return faults.json_response(422, {"detail": "Invalid resume body"})
    owner = owner_of(who, headers)
    live = state.turns.get(owner, cid)
    if live is None or not live.resumable(cfg.resume_window):
        return faults.conversation_not_found()
    given = headers.get("x-conduit-token", "")
    if given not in (live.conduit_token, live.resume_token):
        if state.conduit_of(given, owner) is None:
            state.stats.rejected_sentinel += 1
            return faults.sentinel_rejected()
        del state.conduits[given]
    if offset > len(live.events):
        return faults.json_response(422, {"detail": "offset is beyond the end of the turn"})
    return turn_stream(state, live, offset, first=False)


async def stop_conversation(request: Request) -> Response | ConnectionReset:
    """POST …/stop_conversation — end the conversation's running turn (idempotent)."""
    step = await _open_step(request, "stops", "stop", client_headers=False)
    if not isinstance(step, _Step):
        return step
    state, headers, body, who = step.state, step.headers, step.body, step.who
    cid = _conversation_id(body)
    if cid is None:
        return faults.json_response(422, {"detail": "Invalid stop body"})
    owner = owner_of(who, headers)
    live = state.turns.get(owner, cid)
    if live is None:
        if state.conversations.get(cid, owner) is None:
            return faults.conversation_not_found()
    elif live.state in ("streaming", "detached"):
        live.halt()
        state.stats.turns_stopped += 1
    return faults.json_response(200, {"success": True})


async def stream_status(request: Request) -> Response:
    """GET …/conversation/{id}/stream_status — IS_STREAMING while a turn runs, else 404."""
    state = sim_state(request)
    state.stats.stream_status += 1
    if state.config.era == "e2":
        return faults.not_found()
    who = identify(request)
    if isinstance(who, Response):
        return who
    owner = owner_of(who, headers_of(request))
    live = state.turns.get(owner, request.path_params["id"])
    if live is None or not live.is_streaming(state.config.resume_window):
        return faults.not_found()
    return faults.json_response(200, {"status": "IS_STREAMING"})
