"""Which account source serves a request, from its ``Authorization`` header.

| key sent                                   | served by                           |
| ------------------------------------------ | ----------------------------------- |
| one of ``AUTHORIZATION``'s codes           | the pool (login-free while empty)   |
| an AccessToken (``eyJ…``), ``,<workspace>`` | that account                        |
| a RefreshToken (``rt_…``), ``,<workspace>`` | that account, exchanged and cached  |
| none / anything else, no AUTHORIZATION set | the login-free flow                 |
| none / anything else, AUTHORIZATION set    | 401                                 |

A ``ChatGPT-Account-ID`` header also selects a Team workspace.

The key is judged before the request's body is read, and a client's own
token before any work is done for it: an AccessToken must be a readable,
unexpired JWT (``fk-`` keys of share sites pass as they are), a
RefreshToken is exchanged (or its refusal remembered) right here. With
``ALLOW_CLIENT_TOKENS=false`` only the ``AUTHORIZATION`` codes are served.
"""

from __future__ import annotations

import hmac
import time
from functools import lru_cache

from starlette.requests import Request

from chat2api.convert.messages import random_uuid
from chat2api.errors import AuthenticationFailed
from chat2api.pool.jwt import jwt_claims
from chat2api.pool.lease import AccountSource, FixedAccount
from chat2api.pool.sources import ClientRefreshToken
from chat2api.pool.tokens import GivenToken, parse_token
from chat2api.state import AppState
from chat2api.values import Credentials


@lru_cache(maxsize=64)
def _given(value: str) -> GivenToken:
    """``parse_token``, remembered: a client's requests share one copy of its token.

    A JWT is 1-2 KB; a thousand open streams of one client would otherwise
    each keep their own.
    """
    return parse_token(value)


def _is_code(key: str, codes: list[str]) -> bool:
    # Compare against every code in constant time, whatever matches.
    found = False
    for code in codes:
        found |= hmac.compare_digest(key.encode(), code.encode())
    return found


@lru_cache(maxsize=64)
def _expiry(token: str) -> tuple[bool, int | float | None]:
    """Whether ``token`` is a readable JWT, and its ``exp`` claim if it is a number.

    Decoded once per token, not per request (``_given`` keeps as many).
    """
    claims = jwt_claims(token)
    exp = claims.get("exp")
    return bool(claims), exp if isinstance(exp, int | float) else None


def _check_access_token(token: str) -> None:
    """Refuse an AccessToken that cannot work: not a JWT, or expired."""
    if not token.startswith("eyJ"):
        return  # an fk- key: only its issuer can judge it
    readable, exp = _expiry(token)
    if not readable:
        raise AuthenticationFailed("The key looks like an AccessToken but is not a readable JWT.")
    if exp is not None and exp <= time.time():
        raise AuthenticationFailed(
            "The AccessToken has expired: get a fresh one, or send the RefreshToken instead.",
            code="token_expired",
        )


async def account_source(request: Request, state: AppState) -> AccountSource:
    """The ``AccountSource`` for this request (see the module docstring)."""
    settings = state.settings
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if header and (scheme.lower() != "bearer" or not value.strip()):
        raise AuthenticationFailed("The Authorization header must be 'Bearer <key>'.")
    given = _given(value)
    if given.token and _is_code(given.token, settings.authorization):
        return state.pool_accounts
    workspace = given.workspace or request.headers.get("chatgpt-account-id", "").strip() or None
    if given.kind != "other" and not settings.allow_client_tokens:
        raise AuthenticationFailed(
            "This deployment serves its AUTHORIZATION codes only, not clients' own tokens "
            "(ALLOW_CLIENT_TOKENS=false)."
        )
    if given.kind == "access_token":
        _check_access_token(given.token)
        # The login-free device a Credentials draws (unused with a token), drawn cheaply.
        return FixedAccount(Credentials(given.token, workspace, device=random_uuid()))
    if given.kind == "refresh_token":
        source = ClientRefreshToken(state.refresh_cache, given.token, workspace)
        await source.ready()  # a refused token fails here, before any work
        return source
    if settings.authorization:
        raise AuthenticationFailed(
            "Incorrect API key provided: use one of this deployment's AUTHORIZATION codes, "
            "an AccessToken or a RefreshToken."
        )
    return FixedAccount(Credentials())
