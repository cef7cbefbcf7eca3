"""``account_source``: which account serves a request, from its Authorization header."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import Request

from chat2api.api.auth import account_source
from chat2api.errors import AuthenticationFailed
from chat2api.pool.lease import FixedAccount
from chat2api.settings import Settings
from chat2api.sim import mint_access_token


def _request(authorization: str) -> Request:
    value = authorization.encode()
    return Request({"type": "http", "headers": [(b"authorization", value)]})


def _source(request: Request, state: Any) -> Any:
    return asyncio.run(account_source(request, state))


def _state() -> Any:
    return SimpleNamespace(settings=Settings(), pool_accounts=None, refresh_cache=None)


def test_requests_with_one_access_token_share_one_copy_of_it() -> None:
    """A thousand open streams of one client keep its 1-2 KB token once, not a thousand times."""
    token = mint_access_token()
    # Two header strings built separately, as two requests would bring them.
    first = _source(_request("Bearer " + token), _state())
    second = _source(_request("Bearer " + token[:10] + token[10:]), _state())
    assert isinstance(first, FixedAccount) and isinstance(second, FixedAccount)
    assert first.credentials.access_token == token
    assert first.credentials.access_token is second.credentials.access_token
    assert first.credentials is not second.credentials  # per-request objects stay separate


def test_workspace_after_a_comma_is_kept_per_token() -> None:
    """``token,workspace`` keeps the workspace with that request's credentials."""
    token = mint_access_token()
    plain = _source(_request(f"Bearer {token}"), _state())
    team = _source(_request(f"Bearer {token},ws-1"), _state())
    assert isinstance(plain, FixedAccount) and isinstance(team, FixedAccount)
    assert plain.credentials.account_id is None
    assert team.credentials.account_id == "ws-1"
    assert team.credentials.access_token == token


def test_client_access_tokens_are_judged_before_any_work() -> None:
    """A junk or expired eyJ… key is a 401 at once; ALLOW_CLIENT_TOKENS=false refuses tokens."""
    expired = mint_access_token(expires_in=-60)
    cases = [
        ("eyJAAAA", "not a readable JWT"),
        ("eyJ" + "\x00" * 10, "not a readable JWT"),
        (expired, "has expired"),
    ]
    for key, message in cases:
        with pytest.raises(AuthenticationFailed) as caught:
            _source(_request("Bearer " + key), _state())
        assert message in caught.value.message
        assert key not in caught.value.message
    closed = SimpleNamespace(
        settings=Settings(ALLOW_CLIENT_TOKENS=False, AUTHORIZATION=["code-1"]),
        pool_accounts="the pool",
        refresh_cache=None,
    )
    for key in (mint_access_token(), "rt_" + "a" * 40, "x" * 45):
        with pytest.raises(AuthenticationFailed) as caught:
            _source(_request("Bearer " + key), closed)
        assert "ALLOW_CLIENT_TOKENS" in caught.value.message
    assert _source(_request("Bearer code-1"), closed) == "the pool"
