"""Cross-origin access to the API routes (``CORS_ALLOW_ORIGINS``), over raw HTTP."""

from __future__ import annotations

import httpx2 as httpx

from servers import ServiceFactory

SITE = "https://chat.example"
USER = [{"role": "user", "content": "say exactly: cors ok"}]


def _preflight(url: str, origin: str = SITE) -> httpx.Response:
    return httpx.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )


def test_preflight_and_answers_carry_the_allow_origin(
    make_service: ServiceFactory, token: str
) -> None:
    """By default any origin may call the API, streamed or not; non-browser calls are untouched."""
    service = make_service(API_PREFIX="p")
    url = service.openai_base_url + "/chat/completions"
    pre = _preflight(url)
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "*"
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert pre.headers["access-control-allow-headers"] == "authorization,content-type"
    assert "access-control-allow-credentials" not in pre.headers

    headers = {"Authorization": f"Bearer {token}", "Origin": SITE}
    answer = httpx.post(url, json={"model": "gpt-4o", "messages": USER}, headers=headers)
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == "cors ok"
    assert answer.headers["access-control-allow-origin"] == "*"

    body = {"model": "gpt-4o", "messages": USER, "stream": True}
    with httpx.stream("POST", url, json=body, headers=headers) as streamed:
        assert streamed.headers["access-control-allow-origin"] == "*"
        assert streamed.read().endswith(b"data: [DONE]\n\n")

    models = httpx.get(service.openai_base_url + "/models", headers={"Origin": SITE})
    assert models.headers["access-control-allow-origin"] == "*"

    plain = httpx.get(service.openai_base_url + "/models")
    assert "access-control-allow-origin" not in plain.headers


def test_token_page_and_admin_api_answer_no_origin(make_service: ServiceFactory) -> None:
    """Only the OpenAI API routes take part: the admin API never allows another origin."""
    service = make_service(ADMIN_KEY="k")
    pre = _preflight(service.base_url + "/tokens/api/accounts")
    assert pre.status_code == 405
    assert "access-control-allow-origin" not in pre.headers
    listed = httpx.get(
        service.base_url + "/tokens/api/accounts",
        headers={"Origin": SITE, "Authorization": "Bearer k"},
    )
    assert listed.status_code == 200
    assert "access-control-allow-origin" not in listed.headers


def test_listed_origins_only(make_service: ServiceFactory) -> None:
    """With a list, a listed origin is echoed (with Vary) and another gets nothing."""
    service = make_service(CORS_ALLOW_ORIGINS=f"{SITE}/, https://other.example")
    url = service.openai_base_url + "/models"
    listed = httpx.get(url, headers={"Origin": SITE})
    assert listed.headers["access-control-allow-origin"] == SITE
    assert listed.headers["vary"] == "Origin"
    pre = _preflight(service.openai_base_url + "/chat/completions", "https://other.example")
    assert pre.headers["access-control-allow-origin"] == "https://other.example"
    stranger = httpx.get(url, headers={"Origin": "https://evil.example"})
    assert stranger.status_code == 200
    assert "access-control-allow-origin" not in stranger.headers
    assert _preflight(url, "https://evil.example").status_code == 405


def test_none_switches_it_off(make_service: ServiceFactory) -> None:
    """``CORS_ALLOW_ORIGINS=none``: no answer allows any origin."""
    service = make_service(CORS_ALLOW_ORIGINS="none")
    pre = _preflight(service.openai_base_url + "/chat/completions")
    assert pre.status_code == 405
    assert "access-control-allow-origin" not in pre.headers
