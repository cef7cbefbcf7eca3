"""POST /oauth/token: refresh-token exchange, rotation, errors, counter, delay and fault."""

from __future__ import annotations

import http.client
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chat2api.sim import mint_refresh_token
from chat2api.sim.tokens import read_access_token, read_refresh_token

from .conftest import Client, Reply

MOBILE_CLIENT = "app_LlGpXReQgckcGGUo2JrYvtJK"
CODEX_CLIENT = "app_EMoamEEZ73f0CkXaXp7hrann"
IOS_REDIRECT = "com.openai.chat://auth.openai.com/ios/com.openai.chat/callback"
SCOPE = "openid profile email offline_access"
USED = (
    "Your refresh token has already been used to generate a new access token. "
    "Please try signing in again."
)


def json_refresh(client: Client, token: str) -> Reply:
    """The mobile form: a JSON body with client id, grant type, redirect and token."""
    body = {
        "client_id": MOBILE_CLIENT,
        "grant_type": "refresh_token",
        "redirect_uri": IOS_REDIRECT,
        "refresh_token": token,
    }
    return client.request("POST", "/oauth/token", body)


def form_refresh(client: Client, token: str, **extra: str) -> Reply:
    """The Codex form: a form-urlencoded body with a scope and no redirect."""
    fields = {
        "grant_type": "refresh_token",
        "client_id": CODEX_CLIENT,
        "refresh_token": token,
        "scope": SCOPE,
    }
    fields.update(extra)
    return raw_post(client, urllib.parse.urlencode(fields).encode(), FORM)


FORM = "application/x-www-form-urlencoded"


def raw_post(client: Client, data: bytes, content_type: str) -> Reply:
    """POST /oauth/token with a raw body and content type."""
    conn = http.client.HTTPConnection(client.server.host, client.server.port, timeout=10)
    conn.request("POST", "/oauth/token", body=data, headers={"Content-Type": content_type})
    resp = conn.getresponse()
    out = Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    conn.close()
    return out


def assert_token_answer(reply: Reply) -> dict[str, Any]:
    """A 200 answer with exactly the spec 7.2 keys; returns its JSON."""
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "application/json"
    data: dict[str, Any] = reply.json()
    assert set(data) == {
        "access_token",
        "refresh_token",
        "id_token",
        "scope",
        "expires_in",
        "token_type",
    }
    assert data["access_token"].startswith("eyJhbGciOi") and data["access_token"].count(".") == 2
    assert data["id_token"].startswith("eyJhbGciOi") and data["id_token"].count(".") == 2
    assert (data["scope"], data["expires_in"], data["token_type"]) == (SCOPE, 864000, "Bearer")
    return data


def assert_invalid_grant(reply: Reply) -> None:
    """400 with an OAuth invalid_grant body."""
    assert reply.status == 400, reply.body
    data = reply.json()
    assert data["error"] == "invalid_grant" and isinstance(data["error_description"], str)


def test_minted_refresh_token_shape() -> None:
    """mint_refresh_token gives an rt_ string of at least 60 chars carrying its grant."""
    token = mint_refresh_token(plan="pro", account_id="acc-7", rotate=False, clears_in=9)
    assert token.startswith("rt_") and len(token) >= 60
    grant = read_refresh_token(token)
    assert (grant.state, grant.plan, grant.account_id) == ("valid", "pro", "acc-7")
    assert (grant.rotate, grant.access_state, grant.clears_in) == (False, "valid", 9)
    assert mint_refresh_token(account_id="acc-7") != mint_refresh_token(account_id="acc-7")
    with pytest.raises(ValueError, match="unknown refresh token state"):
        mint_refresh_token(state="expired")
    with pytest.raises(ValueError, match="unknown account state"):
        mint_refresh_token(access_state="bogus")


def test_json_body_exchange(client: Client) -> None:
    """The JSON form answers an access token with the refresh token's plan and account."""
    token = mint_refresh_token(plan="team", account_id="acc-json")
    data = assert_token_answer(json_refresh(client, token))
    account = read_access_token(data["access_token"])
    assert (account.plan, account.account_id, account.state) == ("team", "acc-json", "valid")
    assert abs(account.expires_at - (time.time() + 864000)) < 5
    assert data["refresh_token"].startswith("rt_") and data["refresh_token"] != token
    assert client.request("GET", "/_sim/stats").json()["refreshes"] == 1


def test_form_body_exchange(client: Client) -> None:
    """The form-urlencoded form is accepted and recorded as parsed fields."""
    token = mint_refresh_token(plan="free", account_id="acc-form")
    data = assert_token_answer(form_refresh(client, token))
    account = read_access_token(data["access_token"])
    assert (account.plan, account.account_id) == ("free", "acc-form")
    recorded = client.request("GET", "/_sim/requests?path=/oauth/token").json()["requests"]
    assert len(recorded) == 1 and recorded[0]["body"]["client_id"] == CODEX_CLIENT
    assert recorded[0]["body"]["scope"] == SCOPE


def test_rotation_retires_old_token(client: Client) -> None:
    """With rotation the old token is refused after use and the new one works, same user."""
    old = mint_refresh_token(account_id="acc-rot")
    first = assert_token_answer(json_refresh(client, old))
    new = first["refresh_token"]
    assert new != old
    assert_invalid_grant(json_refresh(client, old))
    assert json_refresh(client, old).json()["error_description"] == USED
    second = assert_token_answer(form_refresh(client, new))
    a, b = read_access_token(first["access_token"]), read_access_token(second["access_token"])
    assert (a.account_id, a.user_id) == (b.account_id, b.user_id) == ("acc-rot", a.user_id)
    assert second["refresh_token"] not in (old, new)
    assert_invalid_grant(form_refresh(client, new))


def test_no_rotation_returns_same_token(client: Client) -> None:
    """rotate=False: the same refresh token comes back and keeps working."""
    token = mint_refresh_token(rotate=False)
    for _ in range(3):
        assert assert_token_answer(json_refresh(client, token))["refresh_token"] == token


def test_revoked_and_garbage_refused(client: Client) -> None:
    """Revoked, garbled, foreign and old-shape refresh tokens all get 400 invalid_grant."""
    assert_invalid_grant(json_refresh(client, mint_refresh_token(state="revoked")))
    good = mint_refresh_token()
    flipped = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    for bad in (flipped, good[:-1], "rt_" + "x" * 60, "garbage", "a" * 45):
        assert_invalid_grant(json_refresh(client, bad))
        assert_invalid_grant(form_refresh(client, bad))
    assert assert_token_answer(json_refresh(client, good))


def test_malformed_requests(client: Client) -> None:
    """Wrong grant type, missing fields and unparsable bodies are 400 with OAuth errors."""
    token = mint_refresh_token()
    wrong = form_refresh(client, token, grant_type="authorization_code")
    assert (wrong.status, wrong.json()["error"]) == (400, "unsupported_grant_type")
    no_client = client.request(
        "POST", "/oauth/token", {"grant_type": "refresh_token", "refresh_token": token}
    )
    assert (no_client.status, no_client.json()["error"]) == (400, "invalid_request")
    no_token = client.request(
        "POST", "/oauth/token", {"grant_type": "refresh_token", "client_id": MOBILE_CLIENT}
    )
    assert (no_token.status, no_token.json()["error"]) == (400, "invalid_request")
    broken = raw_post(client, b'{"grant_type": ', "application/json")
    assert (broken.status, broken.json()["error"]) == (400, "invalid_request")
    assert client.request("GET", "/_sim/stats").json()["refreshes"] == 4
    assert assert_token_answer(json_refresh(client, token))


def test_counter_counts_every_call(client: Client) -> None:
    """stats.refreshes counts successes and failures alike; reset clears it and used tokens."""
    token = mint_refresh_token()
    assert_token_answer(json_refresh(client, token))
    assert_invalid_grant(json_refresh(client, token))
    assert_invalid_grant(json_refresh(client, "garbage"))
    assert client.server.state.stats.refreshes == 3
    assert client.request("GET", "/_sim/stats").json()["refreshes"] == 3
    client.request("POST", "/_sim/reset")
    assert client.server.state.stats.refreshes == 0
    assert_token_answer(json_refresh(client, token))


def test_refresh_delay_and_concurrent_rotation(client: Client) -> None:
    """refresh_delay delays each answer, not serialised; of 20 concurrent uses one wins."""
    delay, uses = 0.4, 20
    patched = client.request("POST", "/_sim/config", {"refresh_delay": delay})
    assert patched.json()["refresh_delay"] == delay
    start = time.monotonic()
    assert_token_answer(json_refresh(client, mint_refresh_token()))
    assert time.monotonic() - start >= delay
    token = mint_refresh_token()
    start = time.monotonic()
    with ThreadPoolExecutor(uses) as pool:
        replies = list(pool.map(lambda _: json_refresh(client, token), range(uses)))
    elapsed = time.monotonic() - start
    # One after another they would take uses * delay (8 s); even two at a time, half that.
    assert delay <= elapsed < uses * delay / 2
    assert sorted(r.status for r in replies) == [200] + [400] * 19
    assert client.server.state.stats.refreshes == 21
    assert client.request("POST", "/_sim/config", {"refresh_delay": -1}).status == 400


def test_refresh_error_fault(client: Client) -> None:
    """A queued refresh_error answers 500 once, leaves the token usable and spares conversations."""
    queued = client.request("POST", "/_sim/faults", {"fault": "refresh_error", "count": 1})
    assert queued.json() == {"queued": ["refresh_error"]}
    assert client.converse("hi").status == 200
    token = mint_refresh_token()
    failed = json_refresh(client, token)
    assert failed.status == 500 and failed.json()["error"] == "server_error"
    assert assert_token_answer(json_refresh(client, token))
    stats = client.request("GET", "/_sim/stats").json()
    assert (stats["refreshes"], stats["faults_injected"]) == (2, 1)
    client.server.state.queue_faults("refresh_error", 2)
    assert [json_refresh(client, "garbage").status for _ in range(3)] == [500, 500, 400]
    directive = client.converse("hi #sim:fault=refresh_error")
    assert directive.status == 400


@pytest.mark.parametrize(
    ("access_state", "status"),
    [("valid", 200), ("rate_limited", 429), ("flagged", 403), ("expired", 401)],
)
def test_minted_access_token_state(client: Client, access_state: str, status: int) -> None:
    """The exchanged access token drives the conversation endpoint as its access_state says."""
    token = mint_refresh_token(access_state=access_state, clears_in=33)
    access = assert_token_answer(json_refresh(client, token))["access_token"]
    if access_state == "expired":
        reply = client.request("GET", "/backend-api/me", headers=client.auth(access))
        assert reply.status == 401 and reply.json()["detail"]["code"] == "token_expired"
        return
    reply = client.converse("hi", token=access)
    assert reply.status == status
    if access_state == "rate_limited":
        assert reply.json()["detail"]["clears_in"] == 33


def test_admin_mints_refresh_tokens(client: Client) -> None:
    """POST /_sim/accounts kind=refresh_token mints a token the endpoint honours."""
    minted = client.request(
        "POST",
        "/_sim/accounts",
        {"kind": "refresh_token", "plan": "pro", "account_id": "acc-adm", "rotate": False},
    )
    data = minted.json()
    assert minted.status == 200 and data["refresh_token"].startswith("rt_")
    assert (data["plan"], data["account_id"], data["rotate"]) == ("pro", "acc-adm", False)
    answer = assert_token_answer(form_refresh(client, data["refresh_token"]))
    assert answer["refresh_token"] == data["refresh_token"]
    assert read_access_token(answer["access_token"]).plan == "pro"
    limited = client.request(
        "POST", "/_sim/accounts", {"kind": "refresh_token", "access_state": "rate_limited"}
    ).json()["refresh_token"]
    access = assert_token_answer(json_refresh(client, limited))["access_token"]
    assert client.converse("hi", token=access).status == 429
    revoked = {"kind": "refresh_token", "state": "revoked"}
    minted_revoked = client.request("POST", "/_sim/accounts", revoked).json()["refresh_token"]
    assert_invalid_grant(json_refresh(client, minted_revoked))
    for bad in ({"kind": "refresh_token", "state": "expired"}, {"kind": "cookie"}):
        assert client.request("POST", "/_sim/accounts", bad).status == 400
    assert "access_token" in client.request("POST", "/_sim/accounts", {}).json()
