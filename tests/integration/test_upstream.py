"""The upstream protocol as the simulator sees it: accounts, sentinel, sessions, cancellation."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2 as httpx
import openai
import pytest

from chat2api.sentinel import DEFAULT_USER_AGENT
from chat2api.sim import SimServer, mint_access_token
from chat2api.upstream.browser import document_headers, fetch_headers
from servers import (
    SENTINEL_START,
    ServiceFactory,
    ServiceServer,
    sdk,
    send_path,
    sentinel_path,
    sentinel_rounds,
    speaks_e3,
)

ALL_ERAS = True  # each test runs against the simulator in every era (conftest.ERAS)

USER = [{"role": "user", "content": "say exactly: ok"}]


def _requests(sim: SimServer, *suffixes: str) -> list[dict]:
    return [r for r in sim.state.requests if r["path"].endswith(suffixes)]


@pytest.fixture(scope="module")
def v1(services: dict[str, ServiceServer]) -> ServiceServer:
    """The v1-format service."""
    return services["v1"]


def test_login_free_without_authorization(v1: ServiceServer, sim: SimServer) -> None:
    """No Authorization header uses /backend-anon with a device id and no bearer."""
    response = httpx.post(
        v1.openai_base_url + "/chat/completions", json={"model": "auto", "messages": USER}
    )
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "ok"
    (conv,) = _requests(sim, "/conversation")
    assert conv["path"] == send_path(sim, "/backend-anon")
    assert "authorization" not in conv["headers"]
    assert len(conv["headers"]["oai-device-id"]) == 36
    (req,) = _requests(sim, *SENTINEL_START)
    assert req["path"] == sentinel_path(sim, "/backend-anon")


def test_sdk_key_that_is_not_a_token_is_login_free(v1: ServiceServer, sim: SimServer) -> None:
    """An SDK key that is not an AccessToken (e.g. sk-…) also uses the login-free flow."""
    result = sdk(v1, "sk-anything").chat.completions.create(model="auto", messages=USER)
    assert result.choices[0].message.content == "ok"
    assert [r["path"] for r in _requests(sim, "/conversation")] == [send_path(sim, "/backend-anon")]


def test_access_token_uses_account_flow(v1: ServiceServer, sim: SimServer, token: str) -> None:
    """A Bearer AccessToken is sent upstream on /backend-api with a stable device id."""
    client = sdk(v1, token)
    client.chat.completions.create(model="gpt-4o", messages=USER)
    client.chat.completions.create(model="gpt-4o", messages=USER)
    convs = _requests(sim, "/conversation")
    assert [c["path"] for c in convs] == [send_path(sim)] * 2
    assert all(c["headers"]["authorization"] == f"Bearer {token}" for c in convs)
    assert convs[0]["headers"]["oai-device-id"] == convs[1]["headers"]["oai-device-id"]
    assert all("chatgpt-account-id" not in c["headers"] for c in convs)
    sentinel = convs[0]["headers"]
    assert sentinel["openai-sentinel-chat-requirements-token"]
    assert sentinel["openai-sentinel-proof-token"].startswith("gAAAAAB")


def test_backend_calls_carry_a_browser_fetch_s_headers(
    v1: ServiceServer, sim: SimServer, token: str
) -> None:
    """Requirements and conversation go up as the web app's fetch(), not as page loads."""
    sdk(v1, token).chat.completions.create(model="gpt-4o", messages=USER)
    (req,) = _requests(sim, *SENTINEL_START)
    (conv,) = _requests(sim, "/conversation")
    fetch = fetch_headers(DEFAULT_USER_AGENT)  # its values: tests/unit/test_browser_headers.py
    for headers in (req["headers"], conv["headers"]):
        assert {name: headers[name.lower()] for name in fetch} == dict(fetch)
        assert headers["sec-fetch-mode"] == "cors"
        assert headers["accept-encoding"] == "gzip, deflate, br, zstd"
        assert "upgrade-insecure-requests" not in headers
        assert "sec-fetch-user" not in headers
    assert conv["headers"]["accept"] == "text/event-stream"


@pytest.fixture
def page_server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """An HTTP server on 127.0.0.1 that records each request's headers and answers 404."""
    seen: list[dict[str, str]] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({name.lower(): value for name, value in self.headers.items()})
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_home_page_fetched_as_a_page_load(
    make_service: ServiceFactory, page_server: tuple[str, list[dict[str, str]]], token: str
) -> None:
    """GET / (for the build id) carries a navigation's headers, as typed in the address bar."""
    base_url, seen = page_server
    service = make_service(CHATGPT_BASE_URL=base_url)
    with pytest.raises(openai.APIStatusError):
        sdk(service, token).chat.completions.create(model="gpt-4o", messages=USER)
    (home,) = seen
    page = document_headers(DEFAULT_USER_AGENT)  # its values: tests/unit/test_browser_headers.py
    sent = {name: value for name, value in page.items() if name != "Priority"}
    assert {name: home[name.lower()] for name in sent} == sent  # curl: Priority on HTTP/2 only
    assert "authorization" not in home


def test_team_workspace_by_comma(v1: ServiceServer, sim: SimServer) -> None:
    """``token,account-id`` selects that Team workspace via ChatGPT-Account-Id."""
    team = mint_access_token(plan="team", account_id="ws-1234")
    sdk(v1, f"{team},ws-1234").chat.completions.create(model="gpt-4o", messages=USER)
    (conv,) = _requests(sim, "/conversation")
    assert conv["headers"]["authorization"] == f"Bearer {team}"
    assert conv["account_id"] == "ws-1234"


def test_team_workspace_by_header(v1: ServiceServer, sim: SimServer) -> None:
    """A ChatGPT-Account-ID request header selects the workspace too."""
    team = mint_access_token(plan="team", account_id="ws-9")
    with openai.OpenAI(
        base_url=v1.openai_base_url,
        api_key=team,
        max_retries=0,
        default_headers={"ChatGPT-Account-ID": "ws-9"},
    ) as client:
        client.chat.completions.create(model="gpt-4o", messages=USER)
    (conv,) = _requests(sim, "/conversation")
    assert conv["account_id"] == "ws-9"


def test_gizmo_model_uses_gizmo_mode(v1: ServiceServer, sim: SimServer, token: str) -> None:
    """gpt-4-gizmo-g-<id> talks to that GPT through the gizmo conversation mode."""
    result = sdk(v1, token).chat.completions.create(model="gpt-4-gizmo-g-abc123", messages=USER)
    assert result.model == "gpt-4-gizmo-g-abc123"
    (conv,) = _requests(sim, "/conversation")
    assert conv["body"]["conversation_mode"] == {
        "kind": "gizmo_interaction",
        "gizmo_id": "g-abc123",
    }


def test_home_page_fetched_once_and_sessions_reused(
    make_service: ServiceFactory, sim: SimServer, token: str
) -> None:
    """The build id is fetched once and cached; one pooled session serves every request."""
    service = make_service()
    client = sdk(service, token)
    for _ in range(5):
        client.chat.completions.create(model="gpt-4o", messages=USER)
    assert sim.state.stats.home == 1
    assert sentinel_rounds(sim) == 5
    assert sim.state.stats.conversations == 5
    assert service.app.state.chat2api.sessions.size == 1


def test_base_url_list_is_rotated(make_service: ServiceFactory, sim: SimServer, token: str) -> None:
    """CHATGPT_BASE_URL takes a comma list; requests rotate over it, a session each."""
    with SimServer() as other:
        service = make_service(CHATGPT_BASE_URL=f"{sim.base_url},{other.base_url}")
        client = sdk(service, token)
        for _ in range(4):
            assert client.chat.completions.create(model="gpt-4o", messages=USER).choices
        assert sim.state.stats.conversations == 2
        assert other.state.stats.conversations == 2
        assert service.app.state.chat2api.sessions.size == 2


def test_conversation_only_skips_sentinel(
    make_service: ServiceFactory, sim: SimServer, token: str
) -> None:
    """CONVERSATION_ONLY sends the conversation alone, as to a gateway doing the sentinel."""
    sim.state.config = sim.state.config.patched({"require_sentinel": False})
    service = make_service(CONVERSATION_ONLY="true", AUTH_KEY="gateway-secret")
    result = sdk(service, token).chat.completions.create(model="gpt-4o", messages=USER)
    assert result.choices[0].message.content == "ok"
    assert sim.state.stats.requirements == 0
    assert sim.state.stats.home == 0
    (conv,) = _requests(sim, "/conversation")
    assert conv["headers"]["authkey"] == "gateway-secret"
    assert "openai-sentinel-proof-token" not in conv["headers"]


def test_pow_harder_than_limit_is_refused(
    make_service: ServiceFactory, sim: SimServer, token: str
) -> None:
    """A proof-of-work harder than POW_DIFFICULTY is refused without solving or sending."""
    sim.state.config = sim.state.config.patched({"pow_difficulty": "00001f"})
    service = make_service(POW_DIFFICULTY="000032", RETRY_TIMES=0)
    with pytest.raises(openai.PermissionDeniedError) as info:
        sdk(service, token).chat.completions.create(model="gpt-4o", messages=USER)
    assert isinstance(info.value.body, dict)
    assert info.value.body["code"] == "pow_difficulty_too_high"
    assert "00001f" in info.value.body["message"]
    assert sim.state.stats.conversations == 0


def test_pow_in_worker_process_is_accepted(
    make_service: ServiceFactory, sim: SimServer, token: str
) -> None:
    """A real challenge solved in the worker pool passes the simulator's verifier."""
    sim.state.config = sim.state.config.patched({"pow_difficulty": "003fff"})
    service = make_service(POW_WORKERS=1)
    result = sdk(service, token).chat.completions.create(model="gpt-4o", messages=USER)
    assert result.choices[0].message.content == "ok"
    assert sim.state.stats.rejected_sentinel == 0


def test_required_turnstile_gives_challenge_error(
    make_service: ServiceFactory, sim: SimServer, token: str
) -> None:
    """When the requirements demand Turnstile and the upstream refuses, the error says so."""
    sim.state.config = sim.state.config.patched({"turnstile_required": True})
    service = make_service(RETRY_TIMES=2)
    with pytest.raises(openai.PermissionDeniedError) as info:
        sdk(service, token).chat.completions.create(model="gpt-4o", messages=USER)
    assert isinstance(info.value.body, dict)
    assert info.value.body["code"] == "upstream_challenge_required"
    assert "CONVERSATION_ONLY" in info.value.body["message"]
    assert "turnstile" in info.value.body["message"]
    assert sentinel_rounds(sim) == 1  # not retried


def _open_stream(port: int, token: str, content: str, events: int) -> socket.socket:
    """A raw streamed completion, read until ``events`` SSE events arrived; still open."""
    body = (
        b'{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"'
        + content.encode()
        + b'"}]}'
    )
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(request)
    received = b""
    while received.count(b"data: ") < events:
        received += conn.recv(65536)
    return conn


def _wait_cancelled(sim: SimServer, within: float) -> float:
    """Seconds until the simulator saw one stream cancelled (at most ``within``)."""
    started = time.monotonic()
    while sim.state.stats.streams_cancelled < 1 and time.monotonic() - started < within:
        time.sleep(0.02)
    return time.monotonic() - started


def test_client_disconnect_cancels_upstream(v1: ServiceServer, sim: SimServer, token: str) -> None:
    """Closing the client connection mid-stream aborts the upstream stream (E3: and stops it)."""
    with _open_stream(v1.port, token, "long #sim:words=400 #sim:delay_ms=20", events=5):
        pass
    _wait_cancelled(sim, within=10)
    assert sim.state.stats.streams_cancelled == 1
    assert sim.state.stats.streams_completed == 0
    deadline = time.monotonic() + 5
    while speaks_e3(sim) and sim.state.stats.turns_stopped < 1 and time.monotonic() < deadline:
        time.sleep(0.02)  # stop_conversation is sent in the background
    stopped = [r["body"] for r in _requests(sim, "/stop_conversation")]
    if speaks_e3(sim):
        assert sim.state.stats.turns_stopped == 1
        (body,) = stopped
        assert body == {"conversation_id": body["conversation_id"], "exclude_async_types": []}
        assert body["conversation_id"]
    else:
        assert stopped == []


def test_client_disconnect_during_upstream_silence(
    v1: ServiceServer, sim: SimServer, token: str
) -> None:
    """A client leaving while the upstream is silent stops it now, not at the next chunk.

    The upstream pauses between records, and the client hangs up just after one was
    relayed: a cancel that waited for the next record would come a whole pause later.
    """
    pause = 1.0
    content = f"slow #sim:words=3 #sim:delay_ms={int(pause * 1000)}"
    with _open_stream(v1.port, token, content, events=2):
        pass  # the role chunk and the first word came; the next record is a pause away
    waited = _wait_cancelled(sim, within=10 * pause)
    assert sim.state.stats.streams_cancelled == 1
    assert sim.state.stats.streams_completed == 0
    assert waited < pause / 2, f"the upstream was cancelled only after {waited:.2f}s"


def test_raw_sse_framing(v1: ServiceServer, token: str) -> None:
    """The stream is text/event-stream, one ``data:`` JSON per event, ending in [DONE]."""
    with httpx.stream(
        "POST",
        v1.openai_base_url + "/chat/completions",
        json={"model": "gpt-4o", "stream": True, "messages": USER},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read()
    assert raw.endswith(b"data: [DONE]\n\n")
    events = raw.split(b"\n\n")
    assert events[-1] == b""
    for event in events[:-2]:
        assert event.startswith(b"data: {") and event.endswith(b"}")
        assert b"\n" not in event
    assert b"\r" not in raw
