"""Models as the original chose them: DEFAULT_MODEL, <model>-gizmo-g-<id>, CHECK_MODEL."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import openai
import pytest

from chat2api.convert.models import known_model, resolve_model
from chat2api.errors import InvalidRequest
from chat2api.sim import SimServer, mint_access_token
from servers import ServiceFactory, ServiceServer, add_tokens, sdk

CODE = "models-code"
USER = [{"role": "user", "content": "say exactly: ok"}]


def sent_bodies(sim: SimServer) -> list[dict[str, Any]]:
    """The conversation bodies the simulator received, in order."""
    return [r["body"] for r in sim.state.requests if r["path"].endswith("conversation")]


def post(service: ServiceServer, path: str, body: dict[str, Any], key: str) -> httpx.Response:
    return httpx.post(
        service.openai_base_url + path,
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )


def test_missing_model_uses_default_model(make_service: ServiceFactory, sim: SimServer) -> None:
    """A chat request without model is answered with DEFAULT_MODEL (auto unless set)."""
    token = mint_access_token()
    plain = make_service()
    response = post(plain, "/chat/completions", {"messages": USER}, token)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "auto"
    assert sent_bodies(sim)[-1]["model"] == "auto"
    chosen = make_service(DEFAULT_MODEL="gpt-4o-mini")
    response = post(chosen, "/chat/completions", {"messages": USER}, token)
    assert response.status_code == 200
    assert response.json()["model"] == "gpt-4o-mini"
    assert sent_bodies(sim)[-1]["model"] == "gpt-4o-mini"


def test_missing_model_in_responses(make_service: ServiceFactory, sim: SimServer) -> None:
    """The Responses API also falls back to DEFAULT_MODEL; a non-string model is still a 400."""
    token = mint_access_token()
    service = make_service(DEFAULT_MODEL="gpt-4o")
    response = post(service, "/responses", {"input": "say exactly: ok"}, token)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "gpt-4o"
    assert sent_bodies(sim)[-1]["model"] == "gpt-4o"
    bad = post(service, "/responses", {"model": 5, "input": "x"}, token)
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "model"


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("gpt-4-gizmo-g-abc123", "gpt-4o"),
        ("gpt-4o-mini-gizmo-g-abc123", "gpt-4o-mini"),
        ("gpt-5.1-gizmo-g-abc123", "gpt-5-1"),
        ("o3-gizmo-g-abc123", "o3"),
    ],
)
def test_gizmo_suffix_on_any_model(name: str, slug: str) -> None:
    """<model>-gizmo-g-<id> selects that GPT on that model's slug."""
    route = resolve_model(name)
    assert (route.slug, route.gizmo_id) == (slug, "g-abc123")
    assert known_model(name)


def test_gizmo_suffix_needs_a_gizmo_id() -> None:
    """A -gizmo- name without a g-<id> is refused as model_not_found."""
    with pytest.raises(InvalidRequest) as info:
        resolve_model("gpt-4o-gizmo-nope")
    assert info.value.code == "model_not_found"


def test_gizmo_request_reaches_upstream(make_service: ServiceFactory, sim: SimServer) -> None:
    """A gizmo name sends the GPT's conversation mode with the chosen model's slug."""
    service = make_service()
    result = sdk(service, mint_access_token()).chat.completions.create(
        model="gpt-4o-mini-gizmo-g-abc123", messages=USER
    )
    assert result.model == "gpt-4o-mini-gizmo-g-abc123"
    body = sent_bodies(sim)[-1]
    assert body["model"] == "gpt-4o-mini"
    assert body["conversation_mode"] == {"kind": "gizmo_interaction", "gizmo_id": "g-abc123"}


def test_check_model_refuses_a_model_the_account_lacks(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """With CHECK_MODEL, a model missing from the account's list is a 404 before any send."""
    sim.state.config = sim.state.config.patched({"models": ["auto", "gpt-4o"]})
    service = make_service(CHECK_MODEL="true", AUTHORIZATION=CODE)
    add_tokens(service.settings, mint_access_token(account_id="m1"), mint_access_token())
    client = sdk(service, CODE)
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="o3", messages=USER)
    body = info.value.body
    assert isinstance(body, dict) and body["code"] == "model_not_found"
    assert "`o3`" in str(body["message"])
    assert sim.state.stats.conversations == 0
    assert client.chat.completions.create(model="gpt-4o", messages=USER).choices
    assert client.chat.completions.create(model="auto", messages=USER).choices


def test_without_check_model_the_list_is_not_asked(
    make_service: ServiceFactory, sim: SimServer
) -> None:
    """CHECK_MODEL is off by default: no model list request, the upstream decides."""
    sim.state.config = sim.state.config.patched({"models": ["auto"]})
    service = make_service()
    assert sdk(service, mint_access_token()).chat.completions.create(model="o3", messages=USER)
    assert sim.state.stats.models == 0


def test_upstream_model_not_found_is_a_404() -> None:
    """An upstream 4xx whose detail code is model_not_found becomes 404 model_not_found."""
    from chat2api.errors import UpstreamModelUnavailable
    from chat2api.upstream.errors import error_from_response

    error = error_from_response(
        404,
        {"content-type": "application/json"},
        b'{"detail": {"code": "model_not_found", "message": "The model `o3` does not exist"}}',
        what="conversation",
    )
    assert isinstance(error, UpstreamModelUnavailable)
    assert (error.status_code, error.code) == (404, "model_not_found")
