"""``account_source``: which account serves a request, from its Authorization header."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from starlette.requests import Request

from chat2api.api.auth import account_source
from chat2api.pool.lease import FixedAccount
from chat2api.settings import Settings
from chat2api.sim import mint_access_token


def _request(authorization: str) -> Request:
    value = authorization.encode()
    return Request({"type": "http", "headers": [(b"authorization", value)]})


def _state() -> Any:
    return SimpleNamespace(settings=Settings(), pool_accounts=None, refresh_cache=None)


def test_requests_with_one_access_token_share_one_copy_of_it() -> None:
    """A thousand open streams of one client keep its 1-2 KB token once, not a thousand times."""
    token = mint_access_token()
    # Two header strings built separately, as two requests would bring them.
    first = account_source(_request("Bearer " + token), _state())
    second = account_source(_request("Bearer " + token[:10] + token[10:]), _state())
    assert isinstance(first, FixedAccount) and isinstance(second, FixedAccount)
    assert first.credentials.access_token == token
    assert first.credentials.access_token is second.credentials.access_token
    assert first.credentials is not second.credentials  # per-request objects stay separate


def test_workspace_after_a_comma_is_kept_per_token() -> None:
    token = mint_access_token()
    plain = account_source(_request(f"Bearer {token}"), _state())
    team = account_source(_request(f"Bearer {token},ws-1"), _state())
    assert isinstance(plain, FixedAccount) and isinstance(team, FixedAccount)
    assert plain.credentials.account_id is None
    assert team.credentials.account_id == "ws-1"
    assert team.credentials.access_token == token
