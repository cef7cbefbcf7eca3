"""The gateway as the original's: the account's real plan in accounts/check, FORCE_NO_HISTORY."""

from __future__ import annotations

import time
from typing import Any

import httpx2 as httpx
import pytest

from chat2api.sim import SimServer, mint_access_token
from servers import ServiceFactory, ServiceServer, add_tokens

CHECK = "/backend-api/accounts/check/v4-2023-04-27"


def logged_in(service: ServiceServer, token: str) -> httpx.Client:
    """A browser logged in to the gateway with its own AccessToken."""
    client = httpx.Client(base_url=service.base_url, follow_redirects=False, timeout=30)
    assert client.get("/", params={"token": token}).status_code == 303
    return client


def conversation(text: str, history_disabled: bool) -> dict[str, Any]:
    """A minimal web-app conversation body."""
    return {
        "action": "next",
        "messages": [
            {
                "id": "m1",
                "author": {"role": "user"},
                "content": {"content_type": "text", "parts": [text]},
            }
        ],
        "model": "auto",
        "parent_message_id": "p1",
        "history_and_training_disabled": history_disabled,
    }


def test_account_check_tells_the_upstream_plan(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """accounts/check answers the plan the upstream gives, without the owner's data."""
    service = make_service(ENABLE_GATEWAY="true")
    client = logged_in(service, mint_access_token(plan="team"))
    try:
        body = client.get(CHECK).json()
    finally:
        client.close()
    account = body["accounts"]["default"]
    assert account["account"]["plan_type"] == "plus"  # the simulator's answer, not the stub's
    assert account["entitlement"]["has_active_subscription"] is True
    assert account["account"]["account_id"] == "chat2api"  # no upstream ids
    assert "acc-sim" not in str(body) and "sim_stub" not in str(body)
    assert [r["path"] for r in sim.state.requests] == [CHECK]


def test_account_check_picks_the_workspace_entry() -> None:
    """Of several accounts the upstream lists, the session's workspace (else the first) counts."""
    from chat2api.gateway.accounts import _plan_of, _upstream_account

    data = {
        "accounts": {
            "personal": {"account": {"plan_type": "free"}, "features": []},
            "ws-team": {
                "account": {"plan_type": "team", "name": "Owner's Team"},
                "features": ["beta"],
                "entitlement": {"subscription_plan": "chatgptteamplan", "billing": "x"},
            },
        },
        "account_ordering": ["personal", "ws-team"],
    }
    team = _upstream_account(data, "ws-team")
    assert team is not None
    assert _plan_of(team) == ("team", ["beta"], {"subscription_plan": "chatgptteamplan"})
    first = _upstream_account(data, None)
    assert first is not None and _plan_of(first)[0] == "free"


@pytest.mark.parametrize(("forced", "sent"), [("true", True), ("false", False)])
def test_force_no_history(
    make_service: ServiceFactory, sim: SimServer, forced: str, sent: bool
) -> None:
    """FORCE_NO_HISTORY=true sends every gateway conversation with history_and_training_disabled."""
    sim.state.config = sim.state.config.patched({"pow_required": False, "require_sentinel": False})
    service = make_service(ENABLE_GATEWAY="true", AUTO_SEED="true", FORCE_NO_HISTORY=forced)
    add_tokens(service.settings, mint_access_token(account_id=f"fnh-{time.time_ns()}"))
    client = httpx.Client(base_url=service.base_url, follow_redirects=False, timeout=30)
    try:
        assert client.get("/", params={"token": "seed-fnh"}).status_code == 303
        answer = client.post(
            "/backend-api/conversation",
            json=conversation("say exactly: ok", history_disabled=False),
        )
        assert answer.status_code == 200
    finally:
        client.close()
    (record,) = [r for r in sim.state.requests if r["path"] == "/backend-api/conversation"]
    assert record["body"]["history_and_training_disabled"] is sent
