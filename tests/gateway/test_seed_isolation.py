"""Per-seed conversation isolation: two seeds on one account see only their own chats."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx2 as httpx

from chat2api.sim import SimServer, mint_access_token
from servers import ServiceFactory, ServiceServer, add_tokens


def conversation(text: str, conversation_id: str | None = None) -> dict[str, Any]:
    """A web-app conversation body that asks to be kept in the history."""
    body: dict[str, Any] = {
        "action": "next",
        "messages": [
            {
                "id": f"m-{time.time_ns()}",
                "author": {"role": "user"},
                "content": {"content_type": "text", "parts": [text]},
            }
        ],
        "model": "auto",
        "parent_message_id": "client-created-root",
        "history_and_training_disabled": False,
    }
    if conversation_id is not None:
        body["conversation_id"] = conversation_id
    return body


def seed_browser(service: ServiceServer, seed: str) -> httpx.Client:
    """A browser logged in as ``seed``."""
    client = httpx.Client(base_url=service.base_url, follow_redirects=False, timeout=30)
    assert client.get("/", params={"token": seed}).status_code == 303
    return client


def start(client: httpx.Client, text: str) -> str:
    """One new conversation through the gateway; its id, read from the answer's stream."""
    answer = client.post("/backend-api/conversation", json=conversation(text))
    assert answer.status_code == 200, answer.text
    found = re.search(r'"conversation_id":\s*"([^"]+)"', answer.text)
    assert found is not None, answer.text[:300]
    return found.group(1)


def listed(client: httpx.Client) -> list[str]:
    response = client.get("/backend-api/conversations", params={"offset": 0, "limit": 28})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_two_seeds_on_one_account(make_service: ServiceFactory, sim: SimServer) -> None:
    """Each seed lists and opens only its own conversations; the other's are 404."""
    sim.state.config = sim.state.config.patched({"pow_required": False, "require_sentinel": False})
    service = make_service(ENABLE_GATEWAY="true", AUTO_SEED="true")
    token = mint_access_token(account_id=f"iso-{time.time_ns()}")
    add_tokens(service.settings, token)  # the only account: both seeds share it
    alice, bob = seed_browser(service, "seed-alice"), seed_browser(service, "seed-bob")
    try:
        a1 = start(alice, "say exactly: alice one")
        b1 = start(bob, "say exactly: bob one")
        a2 = start(alice, "say exactly: alice two")
        assert len({a1, a2, b1}) == 3
        assert sorted(listed(alice)) == sorted([a1, a2])
        assert listed(bob) == [b1]
        assert alice.get(f"/backend-api/conversation/{a1}").status_code == 200
        for path in (f"/backend-api/conversation/{b1}", f"/backend-api/conversation/{b1}/"):
            refused = alice.get(path)
            assert refused.status_code == 404
            assert refused.json()["detail"]["code"] == "conversation_not_found"
        assert (
            alice.patch(f"/backend-api/conversation/{b1}", json={"title": "mine"}).status_code
            == 404
        )
        assert (
            alice.patch(f"/backend-api/conversation/{b1}", json={"is_visible": False}).status_code
            == 404
        )
        follow = alice.post("/backend-api/conversation", json=conversation("x", b1))
        assert follow.status_code == 404
        assert bob.get(f"/backend-api/conversation/{b1}").status_code == 200
    finally:
        alice.close()
        bob.close()
    # Alice's refused requests never reached the upstream: two opens did (a1 and Bob's b1),
    # and three conversation turns.
    assert sim.state.stats.conversation_gets == 2
    assert [r["path"] for r in sim.state.requests] == ["/backend-api/conversation"] * 3
    # The account's owner, logged in with the token itself, sees every conversation.
    owner = httpx.Client(base_url=service.base_url, follow_redirects=False, timeout=30)
    try:
        assert owner.get("/", params={"token": token}).status_code == 303
        assert sorted(listed(owner)) == sorted([a1, a2, b1])
    finally:
        owner.close()
