"""Gateway chaining: a chat2api whose CHATGPT_BASE_URL is another chat2api's gateway."""

from __future__ import annotations

import time

import httpx2 as httpx
import openai
import pytest

from chat2api.sim import SimServer, mint_access_token, mint_refresh_token
from servers import ServiceFactory, ServiceServer, add_tokens, bearers, sdk

CODE = "front-code"


def back_gateway(make_service: ServiceFactory, sim: SimServer, **env: str) -> ServiceServer:
    """The chat2api that talks to the upstream, with its gateway on."""
    return make_service(ENABLE_GATEWAY="true", OAUTH_BASE_URL=sim.base_url, **env)


def test_front_pool_answers_through_the_back_gateway(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """The front's pool account's token passes through the back gateway to the upstream."""
    back = back_gateway(make_service, sim)
    front = make_service(CHATGPT_BASE_URL=back.base_url, AUTHORIZATION=CODE)
    token = mint_access_token(account_id=f"chain-{time.time_ns()}")
    add_tokens(front.settings, token)
    client = sdk(front, CODE)
    result = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "say exactly: chained"}]
    )
    assert result.choices[0].message.content == "chained"
    assert bearers(sim, "conversation")[-1] == token
    streamed = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "say exactly: streamed too"}],
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert text == "streamed too"


def test_client_refresh_token_through_the_chain(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """A client's RefreshToken given to the front is exchanged and answered through the back."""
    back = back_gateway(make_service, sim)
    front = make_service(CHATGPT_BASE_URL=back.base_url, OAUTH_BASE_URL=sim.base_url)
    result = sdk(front, mint_refresh_token()).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "say exactly: ok"}]
    )
    assert result.choices[0].message.content == "ok"


def test_back_gateway_refuses_tokens_when_told(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """With ALLOW_CLIENT_TOKENS=false the back gateway wants a login: the front gets a 401."""
    back = back_gateway(make_service, sim, ALLOW_CLIENT_TOKENS="false")
    front = make_service(CHATGPT_BASE_URL=back.base_url, RETRY_TIMES="0")
    with pytest.raises(openai.APIStatusError) as info:
        sdk(front, mint_access_token()).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.status_code == 401
    assert sim.state.stats.conversations == 0


def test_bearer_tokens_do_not_open_pages(make_service: ServiceFactory, sim: SimServer) -> None:
    """A bearer token reaches only the backend API paths; the web app's pages still need a login."""
    back = back_gateway(make_service, sim)
    token = mint_access_token()
    page = httpx.get(
        back.base_url + "/", headers={"Authorization": f"Bearer {token}"}, follow_redirects=False
    )
    assert page.status_code == 302
    assert page.headers["location"] == "/login"
    api = httpx.get(
        back.base_url + "/backend-api/models", headers={"Authorization": f"Bearer {token}"}
    )
    assert api.status_code == 200
    assert "models" in api.json()
