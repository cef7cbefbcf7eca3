"""The E2 sentinel (spec 3.4, 3.7): `chat-requirements` issues a token, the send checks it.

The E3 prepare/finalize pair is in e3.py; both eras verify proofs with
`e3.check_proof`.
"""

from __future__ import annotations

import random
import time

from starlette.requests import Request
from starlette.responses import Response

from chat2api.sim import e3, faults
from chat2api.sim.common import headers_of, identify, parse_json, sim_state
from chat2api.sim.proofs import REQUIREMENTS_PREFIX
from chat2api.sim.state import Requirements, SimState


async def chat_requirements(request: Request) -> Response:
    """POST .../sentinel/chat-requirements — issue a token bound to a fresh PoW seed."""
    state = sim_state(request)
    cfg = state.config
    state.stats.requirements += 1
    body = parse_json(await request.body())
    state.record(request.url.path, "POST", headers_of(request), body)
    who = identify(request)
    if isinstance(who, Response):
        return who
    p = body.get("p") if isinstance(body, dict) else None
    if cfg.require_p and not (isinstance(p, str) and p.startswith(REQUIREMENTS_PREFIX)):
        state.stats.rejected_sentinel += 1
        return faults.sentinel_rejected()
    persona = "chatgpt-noauth" if who is None else who.persona
    turnstile = cfg.turnstile_required or (bool(state.faults) and state.faults[0] == "turnstile")
    seed = repr(random.random())
    token = e3.opaque(300)
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
    answer = {
        "persona": persona,
        "token": token,
        "expire_after": cfg.requirements_expire_after,
        "arkose": {"required": cfg.arkose_required, "dx": e3.dx() if cfg.arkose_required else None},
        "turnstile": {"required": turnstile, "dx": e3.dx() if turnstile else None},
        "proofofwork": e3.pow_block(cfg, seed),
    }
    return faults.json_response(200, answer)


def check_sentinel(state: SimState, headers: dict[str, str]) -> Response | None:
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
