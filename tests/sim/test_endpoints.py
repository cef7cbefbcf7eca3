"""Bootstrap, models, requirements, auth and admin endpoints over real sockets."""

from __future__ import annotations

import re

from chat2api.sim import mint_access_token

from .conftest import DEVICE, P_TOKEN, Client


def test_home_page_has_build_and_scripts(client: Client) -> None:
    """GET / serves data-build="prod-<40 hex>" and three inert CDN script tags, and is counted."""
    reply = client.request("GET", "/")
    html = reply.body.decode()
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/html")
    assert re.search(r'<html data-build="prod-[0-9a-f]{40}"', html)
    assert len(re.findall(r'<script src="https://cdn\.oaistatic\.com/assets/[^"]+\.js"', html)) == 3
    assert client.request("GET", "/_sim/stats").json()["home"] == 1


def test_requirements_shape_paid(client: Client) -> None:
    """chat-requirements answers spec 3.7's keys in order, persona from the plan."""
    reply = client.request(
        "POST", "/backend-api/sentinel/chat-requirements", {"p": P_TOKEN}, client.auth()
    )
    data = reply.json()
    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    assert list(data) == ["persona", "token", "expire_after", "arkose", "turnstile", "proofofwork"]
    assert data["persona"] == "chatgpt-paid" and data["token"].startswith("gAAAAAB")
    assert data["expire_after"] == 540
    assert data["arkose"] == {"required": False, "dx": None}
    assert data["turnstile"] == {"required": False, "dx": None}
    pow_ = data["proofofwork"]
    assert pow_["required"] is True and pow_["difficulty"] == "0fffff"
    assert float(pow_["seed"]) < 1


def test_requirements_persona_free_anon_and_null_p(client: Client) -> None:
    """Free plan → chatgpt-freeaccount; /backend-anon → chatgpt-noauth; {"p": null} accepted."""
    free = mint_access_token(plan="free")
    reply = client.request(
        "POST", "/backend-api/sentinel/chat-requirements", {"p": None}, client.auth(free)
    )
    assert reply.json()["persona"] == "chatgpt-freeaccount"
    anon = client.request(
        "POST",
        "/backend-anon/sentinel/chat-requirements",
        {"p": P_TOKEN},
        {"OAI-Device-Id": DEVICE},
    )
    assert anon.json()["persona"] == "chatgpt-noauth"
    missing = client.request("POST", "/backend-anon/sentinel/chat-requirements", {"p": P_TOKEN})
    assert missing.status == 401


def test_auth_errors(client: Client) -> None:
    """Missing bearer → 401 Unauthorized; malformed → invalid_jwt; expired → token_expired."""
    path = "/backend-api/models"
    assert client.request("GET", path).json() == {"detail": "Unauthorized"}
    bad = client.request("GET", path, headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status == 401 and bad.json() == {
        "detail": {
            "message": "Could not parse your authentication token. Please try signing in again.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_jwt",
        }
    }
    old = client.request("GET", path, headers=client.auth(mint_access_token(state="expired")))
    assert old.status == 401 and old.json()["detail"]["code"] == "token_expired"


def test_models_catalogue(client: Client) -> None:
    """GET /backend-api/models lists the configured slugs with default_model_slug."""
    data = client.request("GET", "/backend-api/models", headers=client.auth()).json()
    slugs = [m["slug"] for m in data["models"]]
    assert slugs[:2] == ["auto", "gpt-5-3"] and data["default_model_slug"] == "auto"
    anon = client.request("GET", "/backend-anon/models", headers={"OAI-Device-Id": DEVICE})
    assert anon.status == 200


def test_me_and_session(client: Client) -> None:
    """/backend-api/me names the token's user; /api/auth/session is {} without a cookie."""
    token = mint_access_token(email="eve@example.com", user_id="user-eve")
    me = client.request("GET", "/backend-api/me", headers=client.auth(token)).json()
    assert (me["id"], me["email"], me["object"]) == ("user-eve", "eve@example.com", "user")
    assert client.request("GET", "/api/auth/session").json() == {}
    cookie = {"Cookie": "__Secure-next-auth.session-token=abc"}
    session = client.request("GET", "/api/auth/session", headers=cookie).json()
    assert session["accessToken"].startswith("eyJ") and session["account"]["planType"] == "plus"


def test_admin_accounts_and_config(client: Client) -> None:
    """/_sim/accounts mints tokens in a state; /_sim/config patches and validates knobs."""
    acct = client.request(
        "POST", "/_sim/accounts", {"state": "rate_limited", "plan": "pro", "clears_in": 9}
    ).json()
    assert (acct["state"], acct["plan"]) == ("rate_limited", "pro")
    assert client.request("POST", "/_sim/accounts", {"state": "nope"}).status == 400
    cfg = client.request("POST", "/_sim/config", {"reply_words": 4, "chunk_delay": 0}).json()
    assert cfg["reply_words"] == 4 and client.server.state.config.reply_words == 4
    assert client.request("POST", "/_sim/config", {"nope": 1}).status == 400
    assert client.request("POST", "/_sim/config", {"pow_hash": "md5"}).status == 400
