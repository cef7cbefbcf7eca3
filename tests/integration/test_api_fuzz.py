"""Generated requests never crash the service: no 5xx, no traceback, always the OpenAI envelope.

A seeded Hypothesis run (the same examples each time, a few hundred in all)
against the running service and the simulator, over real HTTP: chat
completions, Responses, image generation and the admin API get bodies that
are nearly right (known fields with wrong types, odd roles and parts,
streams, tools) and bodies that are plain garbage. Client-given URLs are
only ever local or malformed, so nothing leaves the machine.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from chat2api.sim import SimServer, mint_access_token
from servers import ServiceServer, add_tokens

ADMIN_KEY = "fuzz-admin-key-4e2b"
CODE = "fuzz-pool-code"
FUZZ = settings(
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=24)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
urls = st.sampled_from(
    [
        "http://127.0.0.1/a.png",
        "http://10.0.0.1/x",
        "http://[::1]/x",
        "file:///etc/passwd",
        "data:image/png;base64,iVBORw0KGgo=",
        "data:image/png;base64,!!!",
        "data:,",
        "not a url",
        "",
    ]
)
parts = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=40)}),
    st.fixed_dictionaries(
        {"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": urls})}
    ),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": urls}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["input_audio", "file", "refusal", "video", ""])},
        optional={"file": json_values, "text": json_values},
    ),
    json_values,
)
contents = st.one_of(st.text(max_size=60), st.lists(parts, max_size=3), st.none(), json_values)
roles = st.sampled_from(["user", "system", "assistant", "developer", "tool", "function", "bot"])
messages = st.lists(
    st.fixed_dictionaries(
        {"role": roles | st.text(max_size=5), "content": contents},
        optional={
            "name": json_values,
            "tool_calls": json_values,
            "tool_call_id": st.text(max_size=10) | json_values,
        },
    ),
    max_size=4,
)
tools = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["function", "web_search", "x"]),
            "function": st.fixed_dictionaries(
                {"name": st.text(max_size=12)},
                optional={"parameters": json_values, "description": st.text(max_size=20)},
            )
            | json_values,
        }
    ),
    max_size=2,
)
models = st.sampled_from(["gpt-4o", "auto", "o3", "gpt-5-4-thinking", "gpt-4o-mini"])
words = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40)
valid_messages = st.lists(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["user", "system", "developer"]),
            "content": words
            | st.lists(
                st.fixed_dictionaries({"type": st.just("text"), "text": words}),
                min_size=1,
                max_size=2,
            ),
        }
    ),
    min_size=1,
    max_size=3,
).map(lambda turns: [*turns, {"role": "user", "content": "say exactly: ok"}])
valid_tools = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.just("function"),
            "function": st.fixed_dictionaries(
                {
                    "name": st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
                    "parameters": st.fixed_dictionaries(
                        {
                            "type": st.just("object"),
                            "properties": st.dictionaries(
                                st.from_regex(r"[a-z]{1,6}", fullmatch=True),
                                st.fixed_dictionaries(
                                    {"type": st.sampled_from(["string", "integer", "boolean"])}
                                ),
                                max_size=3,
                            ),
                        }
                    ),
                },
                optional={"description": words},
            ),
        }
    ),
    min_size=1,
    max_size=2,
)


def mutated(valid: st.SearchStrategy[dict[str, Any]], keys: list[str]) -> st.SearchStrategy[Any]:
    """Valid bodies (half the time), one field replaced by anything, or anything at all."""
    one_off = st.builds(
        lambda body, key, value: {**body, key: value}, valid, st.sampled_from(keys), json_values
    )
    return st.one_of(valid, valid, one_off, json_values, raw_bodies)


raw_bodies = st.binary(max_size=200) | st.text(max_size=100).map(str.encode)
valid_chat = st.fixed_dictionaries(
    {"model": models, "messages": valid_messages},
    optional={
        "stream": st.booleans(),
        "max_tokens": st.integers(min_value=1, max_value=4096),
        "temperature": st.floats(min_value=0, max_value=2),
        "tools": valid_tools,
        "tool_choice": st.sampled_from(["auto", "none"]),
        "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
        "user": words,
    },
)
chat_bodies = mutated(
    valid_chat,
    ["model", "messages", "stream", "max_tokens", "tools", "tool_choice", "n", "stream_options"],
) | st.fixed_dictionaries(
    {"model": models, "messages": messages}, optional={"tools": tools, "stream": st.booleans()}
)
valid_responses = st.fixed_dictionaries(
    {"model": models, "input": words | valid_messages},
    optional={
        "instructions": words,
        "stream": st.booleans(),
        "store": st.booleans(),
        "max_output_tokens": st.integers(min_value=16, max_value=4096),
        "tools": valid_tools.map(
            lambda tools: [{"type": "function", **t["function"]} for t in tools]
        ),
    },
)
responses_bodies = mutated(
    valid_responses, ["model", "input", "instructions", "stream", "tools", "previous_response_id"]
)
valid_images = st.fixed_dictionaries(
    {"prompt": words},
    optional={
        "n": st.just(1),
        "size": st.sampled_from(["1024x1024", "512x768"]),
        "response_format": st.sampled_from(["url", "b64_json"]),
    },
)
image_bodies = mutated(valid_images, ["prompt", "n", "size", "response_format", "model"])


@pytest.fixture(scope="module")
def fuzzed(sim: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceServer]:
    """chat2api with a pool, an admin key, history on, login throttling off."""
    service = ServiceServer(
        {
            "CHATGPT_BASE_URL": sim.base_url,
            "OAUTH_BASE_URL": sim.base_url,
            "AUTHORIZATION": CODE,
            "ADMIN_KEY": ADMIN_KEY,
            "LOGIN_ATTEMPTS": "0",
            "HISTORY_DISABLED": "false",
            "RETRY_TIMES": "0",
        },
        tmp_path_factory.mktemp("fuzz"),
    ).start()
    add_tokens(service.settings, mint_access_token(account_id="fuzz-acct"))
    yield service
    service.stop()


@pytest.fixture
def http(fuzzed: ServiceServer) -> Iterator[httpx.Client]:
    """One keep-alive client for the whole run."""
    with httpx.Client(base_url=fuzzed.base_url, timeout=60) as client:
        yield client


@pytest.fixture
def quiet_log(caplog: pytest.LogCaptureFixture) -> Iterator[Counter[int]]:
    """Statuses seen in the run; at its end some were answers and some refusals, and no
    log record was an error or carried a traceback."""
    caplog.set_level(logging.INFO)
    statuses: Counter[int] = Counter()
    yield statuses
    errors = [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert errors == []
    assert statuses[200] > 0 and sum(n for s, n in statuses.items() if s >= 400) > 0, statuses


def _check(response: httpx.Response, sent: Any, statuses: Counter[int]) -> None:
    """Below 500; an error is exactly the OpenAI envelope; a stream is well formed."""
    statuses[response.status_code] += 1
    assert response.status_code < 500, (response.status_code, response.text[:300], sent)
    kind = response.headers.get("content-type", "")
    if response.status_code >= 400:
        assert kind.startswith("application/json"), (response.status_code, kind, sent)
        body = response.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"message", "type", "param", "code"}, body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        return
    if kind.startswith("text/event-stream"):
        for event in response.text.split("\n\n"):
            data = [line[6:] for line in event.split("\n") if line.startswith("data: ")]
            for line in data:
                if line != "[DONE]":
                    assert isinstance(orjson.loads(line), dict)
    elif response.content:
        assert kind.startswith("application/json"), (kind, sent)
        assert isinstance(response.json(), dict)


def _encoded(body: Any) -> bytes:
    # The stdlib encoder writes integers of any size (orjson stops at 64 bits).
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def _post(http: httpx.Client, path: str, body: Any, key: str = CODE) -> httpx.Response:
    content = _encoded(body)
    return http.post(
        path,
        content=content,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )


@seed(20261207)
@FUZZ
@given(body=chat_bodies)
def test_chat_completions_fuzz(http: httpx.Client, quiet_log: Counter[int], body: Any) -> None:
    """POST /v1/chat/completions with generated bodies: never a 5xx, always the envelope."""
    _check(_post(http, "/v1/chat/completions", body), body, quiet_log)


@seed(20261208)
@FUZZ
@given(body=responses_bodies)
def test_responses_fuzz(http: httpx.Client, quiet_log: Counter[int], body: Any) -> None:
    """POST /v1/responses with generated bodies: never a 5xx, always the envelope."""
    _check(_post(http, "/v1/responses", body), body, quiet_log)


@seed(20261209)
@settings(FUZZ, max_examples=40)
@given(body=image_bodies)
def test_images_fuzz(http: httpx.Client, quiet_log: Counter[int], body: Any) -> None:
    """POST /v1/images/generations with generated bodies: never a 5xx, always the envelope."""
    _check(_post(http, "/v1/images/generations", body), body, quiet_log)


ADMIN_ROUTES = [
    ("GET", "/tokens/api/accounts"),
    ("POST", "/tokens/api/accounts"),
    ("DELETE", "/tokens/api/accounts"),
    ("POST", "/tokens/api/accounts/revive"),
    ("POST", "/tokens/api/refresh"),
    ("DELETE", "/tokens/api/accounts/{id}"),
    ("POST", "/tokens/api/accounts/{id}/refresh"),
    ("PUT", "/tokens/api/accounts"),
]


@seed(20261210)
@FUZZ
@given(
    route=st.sampled_from(ADMIN_ROUTES),
    account=st.text(max_size=20),
    body=st.fixed_dictionaries({}, optional={"tokens": st.text(max_size=80) | json_values})
    | json_values
    | raw_bodies,
    key=st.sampled_from([ADMIN_KEY, ADMIN_KEY + "x", "", "eyJhbGciOi.x.y"]),
)
def test_admin_api_fuzz(
    http: httpx.Client,
    quiet_log: Counter[int],
    route: tuple[str, str],
    account: str,
    body: Any,
    key: str,
) -> None:
    """The admin API with generated paths, bodies and keys: never a 5xx, always the envelope."""
    method, path = route
    path = path.replace("{id}", urllib.parse.quote(account, safe="") or "x")
    content = _encoded(body)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    _check(
        http.request(method, path, content=content, headers=headers),
        (method, path, body),
        quiet_log,
    )
