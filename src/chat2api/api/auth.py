"""Which account source serves a request, from its ``Authorization`` header.

| key sent                                   | served by                           |
| ------------------------------------------ | ----------------------------------- |
| one of ``AUTHORIZATION``'s codes           | the pool (login-free while empty)   |
| an AccessToken (``eyJ…``), ``,<workspace>`` | that account                        |
| a RefreshToken (``rt_…``), ``,<workspace>`` | that account, exchanged and cached  |
| none / anything else, no AUTHORIZATION set | the login-free flow                 |
| none / anything else, AUTHORIZATION set    | 401                                 |

A ``ChatGPT-Account-ID`` header also selects a Team workspace.
"""

from __future__ import annotations

import hmac
from functools import lru_cache

from starlette.requests import Request

from chat2api.errors import AuthenticationFailed
from chat2api.pool.lease import AccountSource, FixedAccount
from chat2api.pool.sources import ClientRefreshToken
from chat2api.pool.tokens import GivenToken, parse_token
from chat2api.state import AppState
from chat2api.upstream.chatgpt import Credentials


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


def account_source(request: Request, state: AppState) -> AccountSource:
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
    if given.kind == "access_token":
        return FixedAccount(Credentials(given.token, workspace))
    if given.kind == "refresh_token":
        return ClientRefreshToken(state.refresh_cache, given.token, workspace)
    if settings.authorization:
        raise AuthenticationFailed(
            "Incorrect API key provided: use one of this deployment's AUTHORIZATION codes, "
            "an AccessToken or a RefreshToken."
        )
    return FixedAccount(Credentials())
