"""Bad input and upstream failures reach the client as OpenAI errors with the right status."""

from __future__ import annotations

import logging
import time

import httpx2 as httpx
import openai
import pytest

from chat2api.sim import SimServer, mint_access_token
from servers import ServiceFactory, ServiceServer, sdk, sentinel_rounds

ALL_ERAS = True  # each test runs against the simulator in every era (conftest.ERAS)

USER = [{"role": "user", "content": "hello"}]


def _post(server: ServiceServer, body: bytes | dict, **headers: str) -> httpx.Response:
    url = server.openai_base_url + "/chat/completions"
    if isinstance(body, bytes):
        return httpx.post(url, content=body, headers={"Content-Type": "application/json"} | headers)
    return httpx.post(url, json=body, headers=headers, timeout=30)


def _error(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def _conversations(sim: SimServer) -> int:
    return sim.state.stats.conversations


@pytest.fixture(scope="module")
def v1(services: dict[str, ServiceServer]) -> ServiceServer:
    """The v1-format service (error paths do not depend on the format)."""
    return services["v1"]


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        (b"{not json", 400, None, "invalid_json"),
        (b"[1, 2]", 400, None, "invalid_json"),
        ({"model": "gpt-4o"}, 400, "messages", None),
        ({"model": "gpt-4o", "messages": []}, 400, "messages", None),
        ({"model": "", "messages": USER}, 400, "model", None),  # absent: DEFAULT_MODEL
        ({"model": "gpt-4o", "messages": "hi"}, 400, "messages", None),
        ({"model": "gpt-4o", "messages": [{"role": "robot", "content": "x"}]}, 400, None, None),
        ({"model": "gpt-4o", "messages": USER, "temperature": "hot"}, 400, "temperature", None),
        ({"model": "gpt-4o", "messages": USER, "max_tokens": 0}, 400, "max_tokens", None),
        ({"model": "gpt-4o", "messages": USER, "n": 2}, 400, "n", None),
        ({"model": "gpt-4o", "messages": USER, "stream": "yes"}, 400, "stream", None),
        (
            {
                "model": "gpt-4o",
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]},
                ],
            },
            400,
            "messages[1].content[0]",
            "unsupported_content_part",
        ),
        (
            {
                "model": "gpt-4o",
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
                ],
            },
            400,
            "messages[1].content[0]",
            None,
        ),
        (
            {"model": "gpt-4-gizmo-nope", "messages": USER},
            400,
            "model",
            "model_not_found",
        ),
    ],
)
def test_bad_requests(
    v1: ServiceServer,
    sim: SimServer,
    body: bytes | dict,
    status: int,
    param: str | None,
    code: str | None,
) -> None:
    """Malformed requests get a 400 naming the parameter, and nothing goes upstream."""
    response = _post(v1, body)
    assert response.status_code == status
    error = _error(response)
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert _conversations(sim) == 0


@pytest.mark.parametrize("path", ["/chat/completions", "/responses", "/images/generations"])
@pytest.mark.parametrize(
    ("body", "says"), [(b"{not json", "could not parse"), (b"[1, 2]", "must be a JSON object")]
)
def test_every_endpoint_refuses_a_body_that_is_not_a_json_object(
    v1: ServiceServer, sim: SimServer, path: str, body: bytes, says: str
) -> None:
    """The three JSON endpoints answer a broken or non-object body with one 400 invalid_json."""
    response = httpx.post(
        v1.openai_base_url + path, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "invalid_json" and error["param"] is None
    assert says in error["message"]
    assert _conversations(sim) == 0


def test_unknown_route_is_openai_404(v1: ServiceServer) -> None:
    """An unknown path answers 404 in the OpenAI envelope."""
    response = httpx.get(v1.openai_base_url + "/nothing-here")
    assert response.status_code == 404
    assert _error(response)["code"] == "unknown_url"


@pytest.mark.parametrize("path", ["/chat/completions", "/responses"])
def test_wrong_method_is_openai_405(v1: ServiceServer, path: str) -> None:
    """A GET on a POST-only endpoint answers 405 in the OpenAI envelope, naming POST."""
    response = httpx.get(v1.openai_base_url + path)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert _error(response)["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/responses/resp_x", {"GET", "HEAD", "DELETE"}),
        ("POST", "/models", {"GET", "HEAD"}),
    ],
)
def test_405_names_every_method_of_the_path(
    v1: ServiceServer, method: str, path: str, allowed: set[str]
) -> None:
    """A 405 lists all the methods the path takes, not those of one of its handlers."""
    response = httpx.request(method, v1.openai_base_url + path)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == allowed
    assert _error(response)["type"] == "invalid_request_error"


def test_sdk_bad_request_class(v1: ServiceServer, token: str) -> None:
    """The SDK raises BadRequestError with the param of an invalid request."""
    client = sdk(v1, token)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4o", messages=[])
    assert info.value.param == "messages"


@pytest.mark.parametrize(
    ("fault", "sdk_error", "status", "code"),
    [
        ("expired", openai.AuthenticationError, 401, "upstream_unauthorized"),
        ("rate_limited", openai.RateLimitError, 429, "upstream_rate_limited"),
        ("unusual_activity", openai.PermissionDeniedError, 403, "upstream_unusual_activity"),
        ("turnstile", openai.PermissionDeniedError, 403, "upstream_challenge_required"),
        ("cloudflare", openai.InternalServerError, 503, "upstream_cloudflare_challenge"),
        ("server_error", openai.InternalServerError, 502, "upstream_unavailable"),
        ("reset", openai.InternalServerError, 502, None),
    ],
)
def test_upstream_failures_are_typed(
    v1: ServiceServer,
    token: str,
    fault: str,
    sdk_error: type[openai.APIStatusError],
    status: int,
    code: str | None,
) -> None:
    """Each upstream failure maps to its own status and error code."""
    client = sdk(v1, token)
    with pytest.raises(sdk_error) as info:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": f"hi #sim:fault={fault}"}]
        )
    assert info.value.status_code == status
    body = info.value.body
    assert isinstance(body, dict)
    if code is not None:
        assert body["code"] == code
    assert token not in str(body)
    if fault == "rate_limited":
        assert info.value.response.headers["retry-after"] == "252"


def test_stream_failure_before_first_byte_is_an_http_error(v1: ServiceServer, token: str) -> None:
    """A stream request that fails upstream before any text gets an HTTP error, not a 200."""
    client = sdk(v1, token)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "hi #sim:fault=rate_limited"}],
            stream=True,
        )


@pytest.mark.parametrize("fault", ["truncated", "malformed", "stream_error"])
def test_mid_stream_failure_ends_with_error_event(
    v1: ServiceServer, token: str, fault: str
) -> None:
    """A failure after text was sent ends the SSE stream with an error event, no [DONE]."""
    response = _post(
        v1,
        {
            "model": "gpt-4o",
            "stream": True,
            "messages": [{"role": "user", "content": f"hello #sim:words=40 #sim:fault={fault}"}],
        },
        Authorization=f"Bearer {token}",
    )
    assert response.status_code == 200
    events = [e for e in response.text.split("\n\n") if e]
    assert events[0].startswith("data: {")
    assert "[DONE]" not in response.text
    last = httpx.Response(200, content=events[-1].removeprefix("data: ")).json()
    assert set(last) == {"error"}
    assert last["error"]["code"] == "upstream_unavailable"
    with pytest.raises(openai.APIError):
        list(
            sdk(v1, token).chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": f"hello #sim:words=40 #sim:fault={fault}"}],
                stream=True,
            )
        )


@pytest.mark.parametrize("fault", ["truncated", "malformed", "stream_error"])
def test_mid_stream_failure_non_stream_is_502(v1: ServiceServer, token: str, fault: str) -> None:
    """The same failure in a non-stream request is a 502 in the error envelope."""
    response = _post(
        v1,
        {"model": "gpt-4o", "messages": [{"role": "user", "content": f"x #sim:fault={fault}"}]},
        Authorization=f"Bearer {token}",
    )
    assert response.status_code == 502
    assert _error(response)["code"] == "upstream_unavailable"


def test_transient_failures_are_retried(
    make_service: ServiceFactory, sim: SimServer, token: str
) -> None:
    """5xx answers are retried up to RETRY_TIMES before the client sees anything."""
    service = make_service(RETRY_TIMES=3)
    sim.state.queue_faults("server_error", 2)
    result = sdk(service, token).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "say exactly: third time"}]
    )
    assert result.choices[0].message.content == "third time"
    assert sim.state.stats.conversations == 3


def test_retries_are_bounded(make_service: ServiceFactory, sim: SimServer, token: str) -> None:
    """After RETRY_TIMES retries the last error is returned."""
    service = make_service(RETRY_TIMES=2)
    sim.state.queue_faults("server_error", 10)
    with pytest.raises(openai.InternalServerError):
        sdk(service, token).chat.completions.create(model="gpt-4o", messages=USER)
    assert sim.state.stats.conversations == 3


@pytest.mark.parametrize("fault", ["expired", "rate_limited", "turnstile"])
def test_client_errors_are_not_retried(
    make_service: ServiceFactory, sim: SimServer, token: str, fault: str
) -> None:
    """401, 429 and challenge errors are not retried: a retry could not succeed."""
    service = make_service(RETRY_TIMES=3)
    sim.state.queue_faults(fault, 5)
    with pytest.raises(openai.APIStatusError):
        sdk(service, token).chat.completions.create(model="gpt-4o", messages=USER)
    assert sentinel_rounds(sim) == 1


def test_upstream_timeout_is_504(make_service: ServiceFactory, sim: SimServer, token: str) -> None:
    """An upstream that does not answer within UPSTREAM_TIMEOUT gives a 504."""
    service = make_service(UPSTREAM_TIMEOUT=1, RETRY_TIMES=0)
    sim.state.config = sim.state.config.patched({"slow_seconds": 2.5})
    with pytest.raises(openai.APIStatusError) as info:
        sdk(service, token).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x #sim:fault=slow"}]
        )
    assert info.value.status_code == 504
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "upstream_timeout"
    # The abandoned upstream request ends when the simulator wakes up; let it, so it
    # does not land in the next test's counters.
    time.sleep(2.0)


def test_expired_token_from_sim(v1: ServiceServer) -> None:
    """A token whose exp has passed is refused upstream and surfaces as a 401."""
    expired = mint_access_token(expires_in=-60)
    with pytest.raises(openai.AuthenticationError):
        sdk(v1, expired).chat.completions.create(model="gpt-4o", messages=USER)


def test_no_secret_in_logs_or_bodies(
    v1: ServiceServer, sim: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither the access token nor the proof tokens appear in any log line or error body."""
    secret = mint_access_token(state="flagged")
    caplog.set_level(logging.DEBUG)
    response = _post(v1, {"model": "gpt-4o", "messages": USER}, Authorization=f"Bearer {secret}")
    assert response.status_code == 403
    assert secret not in response.text
    time.sleep(0.1)
    assert all(secret not in record.getMessage() for record in caplog.records)
    assert all(secret[:40] not in record.getMessage() for record in caplog.records)
