"""The sentinel's answer, read the same way in both eras (spec 1.4, 3.6).

E2's ``chat-requirements`` and E3's ``chat-requirements/prepare`` answer the
same shape (``token`` or ``prepare_token``, ``proofofwork``, ``turnstile``,
``arkose``, E3 also ``so`` and ``force_login``). What needs a human or a
browser VM is never solved (``../DESIGN.md``, "What this project does not
do"): Arkose and ``force_login`` end the request at once with
``upstream_challenge_required``; Turnstile and ``so`` are named and the
request goes on without them, since some upstreams accept it anyway; a 403
then is reported as that challenge (``error_from_response(challenge=…)``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from chat2api.errors import ProofOfWorkTooHard, UpstreamUnavailable
from chat2api.sentinel import is_too_hard
from chat2api.upstream.errors import challenge_required

__all__ = ["Requirements", "read_requirements"]

_DIFFICULTY = re.compile(r"[0-9a-f]{1,64}")
# Per (difficulty, POW_DIFFICULTY): an upstream asks the same few difficulties.
_too_hard = functools.lru_cache(maxsize=64)(is_too_hard)


@dataclass(frozen=True, slots=True)
class Requirements:
    """What the sentinel asked for."""

    token: str
    pow_seed: str | None = None
    pow_difficulty: str | None = None
    challenge: str | None = None  # unsolved challenges the send goes on without, "+"-joined
    persona: str | None = None


def _required(data: dict[str, Any], key: str) -> bool:
    value = data.get(key)
    return isinstance(value, dict) and value.get("required") is True


def read_requirements(data: dict[str, Any], *, token_key: str, pow_limit: str) -> Requirements:
    """Read a requirements answer; raise for what cannot be answered.

    ``token_key`` is ``token`` (E2) or ``prepare_token`` (E3); ``pow_limit``
    is ``POW_DIFFICULTY``.
    """
    if data.get("force_login") is True:
        raise challenge_required("force_login")
    if _required(data, "arkose"):
        raise challenge_required("arkose")
    token = data.get(token_key)
    if not isinstance(token, str) or not token:
        raise UpstreamUnavailable(f"The upstream's sentinel answer had no {token_key}.")
    challenge = "+".join(c for c in ("turnstile", "so") if _required(data, c)) or None
    persona = data.get("persona")
    pow_ = data.get("proofofwork")
    if not isinstance(pow_, dict) or pow_.get("required") is not True:
        return Requirements(token, challenge=challenge, persona=_text(persona))
    seed, difficulty = str(pow_.get("seed") or ""), str(pow_.get("difficulty") or "").lower()
    if not seed or not _DIFFICULTY.fullmatch(difficulty):
        raise UpstreamUnavailable("The upstream asked for a malformed proof of work.")
    if _too_hard(difficulty, pow_limit):
        raise ProofOfWorkTooHard(
            f"Proof of work difficulty too high: {difficulty} (this deployment solves "
            f"down to POW_DIFFICULTY={pow_limit})."
        )
    return Requirements(token, seed, difficulty, challenge, _text(persona))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
