"""The E2 sentinel (spec 3.4, 3.7): `chat-requirements` issues a token, the send checks it.

The E3 prepare/finalize pair is in e3.py; both eras verify proofs with
`e3.check_proof`.
"""

from __future__ import annotations

import base64
import os
import random
import time
from typing import Any

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
