"""The token API and CLI refuse what only looks like a token: shape is checked on the way in."""

from __future__ import annotations

import httpx2 as httpx
import pytest

from chat2api.pool.tokens import parse_token, token_problem
from chat2api.sim import SimServer, mint_access_token, mint_refresh_token
from servers import ServiceFactory, stored_accounts

ADMIN_KEY = "shape-admin-key-0b3d"
JWT = mint_access_token(account_id="shape-ok")

# (what is pasted, why it is no token)
JUNK = [
    ("eyJ" + "A" * 60, "not a JWT"),
    ("eyJhbGciOiJSUzI1NiJ9\x00.e30.sig", "not a JWT"),
    ("eyJ.e30.", "not a JWT"),
    ("eyJub3QiOiJhbGcifQ.e30.c2ln", "not a JWT"),  # a header without "alg"
    (JWT.replace(".", "..", 1), "not a JWT"),
    (JWT + "!", "not a JWT"),
    ("eyJ" + "A" * 20_000, "longer than"),
    ("rt_" + "a" * 40 + "\x00" + "b" * 5, "RefreshToken with characters"),
    ("rt_" + "a" * 40 + " <b>", "RefreshToken with characters"),
    ("fk-abc def", "fk- key with characters"),
    (JWT + ",ws<script>", "workspace"),
]


@pytest.mark.parametrize(("pasted", "why"), JUNK)
def test_token_problem_names_the_fault(pasted: str, why: str) -> None:
    """Each kind of junk is named by what is wrong with it, without quoting it."""
    problem = token_problem(parse_token(pasted))
    assert problem is not None and why in problem
    assert pasted[:12] not in problem


def test_real_tokens_pass() -> None:
    """Minted AccessTokens and RefreshTokens, fk- keys and workspaces are accepted."""
    for value in (JWT, mint_refresh_token(), "fk-abc_DEF-123", f"{JWT},ws-123_a", "a" * 45):
        assert token_problem(parse_token(value)) is None, value


def test_token_api_refuses_junk(make_service: ServiceFactory, sim: SimServer) -> None:
    """POST /tokens/api/accounts with junk is a 400 naming the line; nothing is stored."""
    service = make_service(ADMIN_KEY=ADMIN_KEY, OAUTH_BASE_URL=sim.base_url, LOGIN_ATTEMPTS="0")
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    for pasted, why in JUNK:
        got = httpx.post(
            service.base_url + "/tokens/api/accounts",
            json={"tokens": f"{JWT}\n{pasted}"},
            headers=auth,
        )
        assert got.status_code == 400, pasted[:20]
        error = got.json()["error"]
        assert error["code"] == "invalid_token_list"
        assert error["message"].startswith("line 2 is ") and why in error["message"]
        assert pasted[:12] not in got.text
    assert stored_accounts(service.settings) == {}
