"""Minting and reading fake access tokens."""

from __future__ import annotations

import time

import pytest

from chat2api.sim.tokens import TokenError, mint_access_token, read_access_token


def test_minted_token_carries_spec_claims() -> None:
    """A minted JWT decodes to the requested plan, account, email and a 10-day exp."""
    token = mint_access_token(plan="team", account_id="acc-1", email="bob@example.com")
    assert token.startswith("eyJhbGciOi") and token.count(".") == 2
    account = read_access_token(token)
    assert (account.plan, account.account_id, account.email) == ("team", "acc-1", "bob@example.com")
    assert account.state == "valid" and account.persona == "chatgpt-paid"
    assert abs(account.expires_at - (time.time() + 864000)) < 5


def test_states_and_expiry() -> None:
    """Account states ride in the sim claim; `expired` puts exp in the past."""
    assert read_access_token(mint_access_token(state="expired")).is_expired()
    limited = read_access_token(mint_access_token(state="rate_limited", clears_in=7))
    assert (limited.state, limited.clears_in) == ("rate_limited", 7)
    assert read_access_token(mint_access_token(plan="free")).persona == "chatgpt-freeaccount"
    with pytest.raises(ValueError, match="unknown account state"):
        mint_access_token(state="bogus")


@pytest.mark.parametrize("bad", ["", "abc", "a.b.c", "eyJhbGciOi.e30.x", "e30.e30"])
def test_unreadable_tokens_raise(bad: str) -> None:
    """Non-JWTs (and JWTs without a numeric exp) raise TokenError."""
    with pytest.raises(TokenError):
        read_access_token(bad)
