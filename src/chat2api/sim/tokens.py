"""Access and refresh tokens: minting well-formed fake tokens and reading them back.

The real upstream issues RS256 JWTs; clients only decode the payload (spec 7.4),
so the simulator signs nothing: the signature segment is 256 bytes derived from
a hash of the payload. The account *state* a test wants (rate limited, flagged,
...) rides in a private claim, so any process can mint a token that makes the
simulator misbehave in a chosen way without talking to it first.

Refresh tokens (spec 7.1, the 2025+ `rt_` shape) are stateless in the same way:
`rt_` + base64url(JSON grant) + `.` + a short hash of that segment, so a garbled
token is recognised. Only the record of *used* (rotated-away) tokens lives in
the simulator's state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

STATE_CLAIM = "https://chat2api.sim/state"
AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"

ACCOUNT_STATES = ("valid", "expired", "rate_limited", "flagged")
REFRESH_STATES = ("valid", "revoked")
REFRESH_PREFIX = "rt_"
PAID_PLANS = frozenset({"plus", "pro", "team", "enterprise", "business", "edu", "go"})


class TokenError(ValueError):
    """The bearer token is not a readable JWT (or the refresh token is not one the sim minted)."""


@dataclass(frozen=True, slots=True)
class Account:
    """What the simulator learns from one access token."""

    user_id: str
    account_id: str
    plan: str
    email: str
    expires_at: int
    state: str
    clears_in: int | None

    @property
    def persona(self) -> str:
        """The sentinel persona for this plan (spec 3.6)."""
        return "chatgpt-paid" if self.plan in PAID_PLANS else "chatgpt-freeaccount"

    def is_expired(self, now: float | None = None) -> bool:
        """True when `exp` lies in the past."""
        return self.expires_at <= (time.time() if now is None else now)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError("segment is not base64url") from exc


def mint_access_token(
    *,
    state: str = "valid",
    plan: str = "plus",
    account_id: str | None = None,
    expires_in: int = 864000,
    email: str = "ada@example.com",
    clears_in: int | None = None,
    user_id: str | None = None,
) -> str:
    """Mint an RS256-looking access token carrying the spec's claims and a sim state.

    `state` is one of valid, expired (exp is put in the past), rate_limited
    (429 on conversations, `clears_in` seconds) or flagged (403 unusual activity).
    """
    if state not in ACCOUNT_STATES:
        raise ValueError(f"unknown account state: {state}")
    now = int(time.time())
    exp = now - 60 if state == "expired" else now + expires_in
    uid = user_id or "user-" + uuid.uuid4().hex[:24]
    acc = account_id or str(uuid.uuid4())
    payload: dict[str, Any] = {
        "aud": ["https://api.openai.com/v1"],
        "client_id": "app_X8zY6vW2pQ9tR3dE7nK1jL5gH",
        "exp": exp,
        "iat": now if state != "expired" else exp - expires_in,
        "iss": "https://auth.openai.com",
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "pwd_auth_time": now * 1000,
        "scp": ["openid", "email", "profile", "offline_access", "model.request"],
        "session_id": "authsess_" + uuid.uuid4().hex[:24],
        "sub": "auth0|" + uuid.uuid4().hex[:24],
        AUTH_CLAIM: {
            "user_id": uid,
            "chatgpt_user_id": uid,
            "chatgpt_account_id": acc,
            "chatgpt_plan_type": plan,
            "chatgpt_compute_residency": "no_constraint",
        },
        PROFILE_CLAIM: {"email": email, "email_verified": True},
    }
    if state != "valid" or clears_in is not None:
        payload[STATE_CLAIM] = {"state": state, "clears_in": clears_in}
    header = {"alg": "RS256", "kid": "sim-key-1", "typ": "JWT"}
    head = _b64url(orjson.dumps(header))
    body = _b64url(orjson.dumps(payload))
    digest = hashlib.sha512(f"{head}.{body}".encode()).digest()
    return f"{head}.{body}.{_b64url(digest * 4)}"


def read_access_token(token: str) -> Account:
    """Decode a bearer token without verifying it; raise TokenError when it is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise TokenError("a JWT has three dot-separated segments")
    try:
        header = orjson.loads(_b64url_decode(parts[0]))
        payload = orjson.loads(_b64url_decode(parts[1]))
    except orjson.JSONDecodeError as exc:
        raise TokenError("segment is not JSON") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise TokenError("segments must be JSON objects")
    exp = payload.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise TokenError("missing numeric exp")
    auth = payload.get(AUTH_CLAIM)
    auth = auth if isinstance(auth, dict) else {}
    profile = payload.get(PROFILE_CLAIM)
    profile = profile if isinstance(profile, dict) else {}
    sim = payload.get(STATE_CLAIM)
    sim = sim if isinstance(sim, dict) else {}
    state = sim.get("state", "valid")
    clears_in = sim.get("clears_in")
    return Account(
        user_id=str(auth.get("user_id") or payload.get("sub") or "user-unknown"),
        account_id=str(auth.get("chatgpt_account_id") or ""),
        plan=str(auth.get("chatgpt_plan_type") or "free"),
        email=str(profile.get("email") or ""),
        expires_at=int(exp),
        state=state if state in ACCOUNT_STATES else "valid",
        clears_in=clears_in if isinstance(clears_in, int) else None,
    )


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """What the simulator learns from one refresh token."""

    state: str
    plan: str
    account_id: str
    rotate: bool
    access_state: str
    clears_in: int | None

    def user_id(self) -> str:
        """A user id stable across refreshes of the same account."""
        return "user-" + hashlib.sha256(self.account_id.encode()).hexdigest()[:24]


def is_optional_int(value: object) -> bool:
    """None or a true int (not a bool)."""
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _refresh_check(segment: str) -> str:
    return _b64url(hashlib.sha256(segment.encode()).digest()[:9])


def _encode_refresh(grant: RefreshGrant) -> str:
    payload = {
        "v": 1,
        "s": grant.state,
        "p": grant.plan,
        "a": grant.account_id,
        "r": grant.rotate,
        "as": grant.access_state,
        "c": grant.clears_in,
        "n": uuid.uuid4().hex,
    }
    segment = _b64url(orjson.dumps(payload))
    return f"{REFRESH_PREFIX}{segment}.{_refresh_check(segment)}"


def mint_refresh_token(
    *,
    state: str = "valid",
    plan: str = "plus",
    account_id: str | None = None,
    rotate: bool = True,
    access_state: str = "valid",
    clears_in: int | None = None,
) -> str:
    """Mint an `rt_` refresh token that `POST /oauth/token` exchanges for an access token.

    `state` is valid or revoked (the endpoint answers 400 invalid_grant);
    `access_state` and `clears_in` are what the minted access token carries
    (see `mint_access_token`); with `rotate` every exchange returns a new
    refresh token and retires the old one, without it the same token comes back.
    """
    if state not in REFRESH_STATES:
        raise ValueError(f"unknown refresh token state: {state}")
    if access_state not in ACCOUNT_STATES:
        raise ValueError(f"unknown account state: {access_state}")
    grant = RefreshGrant(
        state=state,
        plan=plan,
        account_id=account_id or str(uuid.uuid4()),
        rotate=rotate,
        access_state=access_state,
        clears_in=clears_in,
    )
    return _encode_refresh(grant)


def rotate_refresh_token(grant: RefreshGrant) -> str:
    """A new refresh token for the same grant (a fresh nonce, so a different string)."""
    return _encode_refresh(grant)


def read_refresh_token(token: str) -> RefreshGrant:
    """Decode a refresh token minted by the sim; raise TokenError for anything else."""
    if not token.startswith(REFRESH_PREFIX):
        raise TokenError("a refresh token starts with rt_")
    segment, dot, check = token[len(REFRESH_PREFIX) :].partition(".")
    if not dot or not segment or check != _refresh_check(segment):
        raise TokenError("refresh token check failed")
    try:
        payload = orjson.loads(_b64url_decode(segment))
    except orjson.JSONDecodeError as exc:
        raise TokenError("refresh token is not JSON") from exc
    if not isinstance(payload, dict) or payload.get("v") != 1:
        raise TokenError("unknown refresh token version")
    state, plan, account_id = payload.get("s"), payload.get("p"), payload.get("a")
    rotate, access_state, clears_in = payload.get("r"), payload.get("as"), payload.get("c")
    if (
        state not in REFRESH_STATES
        or not isinstance(plan, str)
        or not isinstance(account_id, str)
        or not isinstance(rotate, bool)
        or access_state not in ACCOUNT_STATES
        or not is_optional_int(clears_in)
    ):
        raise TokenError("refresh token fields are invalid")
    return RefreshGrant(
        state=str(state),
        plan=plan,
        account_id=account_id,
        rotate=rotate,
        access_state=str(access_state),
        clears_in=clears_in,
    )


def mint_id_token(grant: RefreshGrant, client_id: str, email: str = "ada@example.com") -> str:
    """An OpenID id_token (RS256-headed, unsigned) for the grant's user."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "aud": [client_id],
        "auth_provider": "password",
        "email": email,
        "email_verified": True,
        "exp": now + 3600,
        "iat": now,
        "iss": "https://auth.openai.com",
        "jti": str(uuid.uuid4()),
        "sub": "auth0|" + grant.user_id().removeprefix("user-"),
        AUTH_CLAIM: {
            "user_id": grant.user_id(),
            "chatgpt_user_id": grant.user_id(),
            "chatgpt_account_id": grant.account_id,
            "chatgpt_plan_type": grant.plan,
        },
    }
    header = {"alg": "RS256", "kid": "sim-key-1", "typ": "JWT"}
    head = _b64url(orjson.dumps(header))
    body = _b64url(orjson.dumps(payload))
    digest = hashlib.sha512(f"{head}.{body}".encode()).digest()
    return f"{head}.{body}.{_b64url(digest * 4)}"
