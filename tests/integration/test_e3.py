"""The E3 send path against the simulator: its calls and headers, the era choice, its errors."""

from __future__ import annotations

import logging
from typing import Any

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat2api.sentinel import decode_token
from chat2api.sim import SimServer, mint_access_token
from servers import ServiceFactory, sdk

USER = [{"role": "user", "content": "say exactly: ok"}]


def _era(sim: SimServer, era: str, **knobs: Any) -> None:
    sim.state.config = sim.state.config.patched({"era": era, **knobs})


def _requests(sim: SimServer, suffix: str) -> list[dict[str, Any]]:
    return [r for r in sim.state.requests if r["path"].endswith(suffix)]


def test_e3_send_calls_and_headers(
    make_service: ServiceFactory, sim: SimServer, token: str
) -> None:
    """One E3 send: prepare, FNV proof, finalize, conduit (no-token first), /f/conversation."""
    _era(sim, "e3-strict", require_client_headers=True)  # OAI-* headers or 403
    service = make_service(UPSTREAM_PROTOCOL="e3")
    client = sdk(service, token)
    for _ in range(2):
        assert client.chat.completions.create(model="gpt-4o", messages=USER).choices[0].message
    stats = sim.state.stats
    assert (stats.home, stats.prepares, stats.finalizes, stats.conduits) == (1, 2, 2, 2)
    assert stats.requirements == 0 and stats.rejected_sentinel == 0
    (prepare, _) = _requests(sim, "/chat-requirements/prepare")
    assert prepare["body"]["p"].startswith("gAAAAAC") and prepare["body"]["p"].endswith("~S")
    finalize = _requests(sim, "/chat-requirements/finalize")[0]
    assert finalize["body"]["proofofwork"].endswith("~S")
    conduit = _requests(sim, "/f/conversation/prepare")[0]
    assert conduit["headers"]["x-conduit-token"] == "no-token"
    assert "messages" not in conduit["body"]
    sends = _requests(sim, "/f/conversation")
    assert len(sends) == 2
    first = sends[0]
    assert first["path"] == "/backend-api/f/conversation"
    assert first["headers"]["x-conduit-token"] not in ("", "no-token")
    assert first["headers"]["oai-client-version"] == sim.state.config.build_id
    assert first["headers"]["openai-sentinel-proof-token"] == finalize["body"]["proofofwork"]
    assert first["headers"]["openai-sentinel-chat-requirements-token"].startswith("gAAAAAB")
    assert first["body"]["parent_message_id"] == "client-created-root"
    assert first["body"]["client_prepare_state"] == "success"
    assert first["body"]["messages"][-1]["content"]["parts"] == ["say exactly: ok"]
    # One OAI-Session-Id per process; the device id stable per token.
    assert {s["headers"]["oai-session-id"] for s in sends} == {first["headers"]["oai-session-id"]}
    assert {s["headers"]["oai-device-id"] for s in sends} == {first["headers"]["oai-device-id"]}


def test_auto_falls_back_to_e2_and_remembers(
    make_service: ServiceFactory, sim: SimServer, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    """auto against an E2-only upstream: E3 is probed once, then E2 serves, logged once."""
    _era(sim, "e2")
    service = make_service()
    client = sdk(service, token)
    with caplog.at_level(logging.WARNING, logger="chat2api.upstream.eras"):
        for _ in range(3):
            assert client.chat.completions.create(model="gpt-4o", messages=USER).choices
    assert sim.state.stats.prepares == 1  # the probe, answered 404; not asked again
    assert sim.state.stats.requirements == 3
    assert [r["path"] for r in _requests(sim, "/conversation")] == ["/backend-api/conversation"] * 3
    logged = [
        r.getMessage() for r in caplog.records if r.name == "chat2api.upstream.eras"
    ]  # the start-up block names the setting too
    assert len(logged) == 1 and "using E2 there for 3600s" in logged[0]
    assert service.app.state.chat2api.backend.eras.era(sim.base_url) == "e2"


def test_auto_moves_back_to_e3_on_unusual_activity(
    make_service: ServiceFactory, sim: SimServer, token: str
) -> None:
    """auto on E2 that the upstream refuses as unusual activity: the same request goes E3."""
    _era(sim, "e2")
    service = make_service()
    client = sdk(service, token)
    assert client.chat.completions.create(model="gpt-4o", messages=USER).choices
    _era(sim, "e3-strict")  # the deployment now refuses E2's conversation POST
    result = client.chat.completions.create(model="gpt-4o", messages=USER)
    assert result.choices[0].message.content == "ok"
    assert service.app.state.chat2api.backend.eras.era(sim.base_url) == "e3"
    assert sim.state.stats.e3_conversations == 1
    assert client.chat.completions.create(model="gpt-4o", messages=USER).choices
    assert sim.state.stats.e3_conversations == 2


def test_fixed_e2_never_switches(make_service: ServiceFactory, sim: SimServer, token: str) -> None:
    """UPSTREAM_PROTOCOL=e2 against an upstream refusing E2: the 403 stands, no silent E3."""
    _era(sim, "e3-strict")
    service = make_service(UPSTREAM_PROTOCOL="e2", RETRY_TIMES=0)
    with pytest.raises(openai.PermissionDeniedError) as info:
        sdk(service, token).chat.completions.create(model="gpt-4o", messages=USER)
    assert isinstance(info.value.body, dict)
    assert info.value.body["code"] == "upstream_unusual_activity"
    assert sim.state.stats.prepares == 0


def test_fixed_e3_without_e3_endpoints(
    make_service: ServiceFactory, sim: SimServer, token: str
) -> None:
    """UPSTREAM_PROTOCOL=e3 against an E2-only upstream: a clear 400 naming the setting."""
    _era(sim, "e2")
    service = make_service(UPSTREAM_PROTOCOL="e3")
    with pytest.raises(openai.BadRequestError) as info:
        sdk(service, token).chat.completions.create(model="gpt-4o", messages=USER)
    assert isinstance(info.value.body, dict)
    assert info.value.body["code"] == "upstream_protocol_unsupported"
    assert "UPSTREAM_PROTOCOL" in info.value.body["message"]
    assert sim.state.stats.requirements == 0


def test_rejected_conduit_is_retried_once(
    make_service: ServiceFactory, sim: SimServer, token: str
) -> None:
    """An empty 403 from /f/conversation gets one fresh prepare/finalize, and then answers."""
    _era(sim, "e3-strict")
    service = make_service(RETRY_TIMES=0)
    sim.state.queue_faults("conduit_rejected", 1)
    result = sdk(service, token).chat.completions.create(model="gpt-4o", messages=USER)
    assert result.choices[0].message.content == "ok"
    assert (sim.state.stats.prepares, sim.state.stats.conduits) == (2, 2)


def test_rejected_twice_has_its_own_code(
    make_service: ServiceFactory, sim: SimServer, token: str
) -> None:
    """Two empty 403s in a row surface as upstream_e3_rejected (403)."""
    _era(sim, "e3-strict")
    service = make_service(RETRY_TIMES=0)
    sim.state.queue_faults("conduit_rejected", 2)
    with pytest.raises(openai.PermissionDeniedError) as info:
        sdk(service, token).chat.completions.create(model="gpt-4o", messages=USER)
    assert isinstance(info.value.body, dict)
    assert info.value.body["code"] == "upstream_e3_rejected"
    assert sim.state.stats.prepares == 2


@pytest.mark.parametrize(
    ("fault", "named"),
    [("so_required", "so"), ("force_login", "force_login"), ("finalize_403", None)],
)
def test_e3_sentinel_refusals(
    make_service: ServiceFactory, sim: SimServer, token: str, fault: str, named: str | None
) -> None:
    """so/force_login end in upstream_challenge_required naming them; a finalize 403 is typed."""
    _era(sim, "e3-strict")
    service = make_service(RETRY_TIMES=0)
    sim.state.queue_faults(fault, 1)
    with pytest.raises(openai.PermissionDeniedError) as info:
        sdk(service, token).chat.completions.create(model="gpt-4o", messages=USER)
    assert isinstance(info.value.body, dict)
    if named is None:
        assert info.value.body["code"] == "upstream_sentinel_rejected"
        assert "sentinel finalize" in info.value.body["message"]
    else:
        assert info.value.body["code"] == "upstream_challenge_required"
        assert f"({named})" in info.value.body["message"]
    assert sim.state.stats.e3_conversations == 0


def test_conversation_only_skips_e3_sentinel(
    make_service: ServiceFactory, sim: SimServer, token: str
) -> None:
    """CONVERSATION_ONLY over E3: no home page, no sentinel; conduit and send only."""
    _era(sim, "e3-strict", require_sentinel=False)
    service = make_service(CONVERSATION_ONLY="true")
    result = sdk(service, token).chat.completions.create(model="gpt-4o", messages=USER)
    assert result.choices[0].message.content == "ok"
    stats = sim.state.stats
    assert (stats.home, stats.prepares, stats.finalizes, stats.e3_conversations) == (0, 0, 0, 1)


# --- resume ----------------------------------------------------------------------

WORDS = " ".join(f"w{i}" for i in range(40))
SAY = [{"role": "user", "content": f"say exactly: {WORDS}"}]


def _answer(client: openai.OpenAI, *, stream: bool) -> str:
    if not stream:
        content = client.chat.completions.create(model="gpt-4o", messages=SAY)
        return content.choices[0].message.content or ""
    chunks = client.chat.completions.create(model="gpt-4o", messages=SAY, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    cut_after=st.integers(min_value=0, max_value=60),
    fault=st.sampled_from(["cut_resumable", "truncated_resumable"]),
    cuts_again=st.integers(min_value=0, max_value=1),
    stream=st.booleans(),
)
def test_cut_stream_resumes_to_the_same_answer(
    make_service: ServiceFactory,
    sim: SimServer,
    token: str,
    cut_after: int,
    fault: str,
    cuts_again: int,
    stream: bool,
) -> None:
    """An E3 stream cut at any record (and once more after resuming) gives the uncut answer."""
    _era(sim, "e3-strict", cut_after_events=cut_after, resume_cuts=cuts_again)
    service = make_service()  # one per test function, shared by its examples
    sim.state.reset()
    sim.state.queue_faults(fault, 1)
    assert _answer(sdk(service, token), stream=stream) == WORDS
    stats = sim.state.stats
    if cut_after > 40:  # past the answer's text: perhaps no cut at all
        return
    # A cut before the resume token came (the encoding is record 0, the token 1), or
    # one whose last records a reset lost on the way, is sent again instead.
    resumed = stats.resumes >= 1 and stats.e3_conversations == 1
    assert resumed or (stats.resumes, stats.e3_conversations) == (0, 2)
    if fault == "truncated_resumable" and cut_after >= 2:  # closed cleanly: nothing lost
        assert resumed
        assert stats.resumes == 1 + (cuts_again if cut_after <= 20 else stats.resumes - 1)


def test_resume_headers_and_offset(
    make_service: ServiceFactory, sim: SimServer, token: str
) -> None:
    """A resume names the conversation, the records read so far and the send's conduit token."""
    _era(sim, "e3-strict", cut_after_events=12, require_client_headers=True)
    service = make_service()
    sim.state.queue_faults("cut_resumable", 1)
    assert _answer(sdk(service, token), stream=True) == WORDS
    (send,) = _requests(sim, "/f/conversation")
    (resume,) = _requests(sim, "/f/conversation/resume")
    assert resume["body"]["offset"] == 12
    assert resume["headers"]["x-conduit-token"] == send["headers"]["x-conduit-token"]
    assert resume["body"]["conversation_id"]
    assert sim.state.stats.resumes == 1


@pytest.mark.parametrize("stream", [True, False])
def test_resumes_end_after_two(
    make_service: ServiceFactory, sim: SimServer, token: str, stream: bool
) -> None:
    """A stream that keeps breaking is resumed twice, then fails as an upstream error."""
    _era(sim, "e3-strict", cut_after_events=10, resume_cuts=5)
    service = make_service(RETRY_TIMES=0)
    sim.state.queue_faults("cut_resumable", 1)
    client = sdk(service, token)
    if stream:
        chunks = client.chat.completions.create(model="gpt-4o", messages=SAY, stream=True)
        received: list[str] = []
        with pytest.raises(openai.APIError) as info:
            received.extend(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert "upstream" in str(info.value.message).lower()
        assert WORDS.startswith("".join(received)) and received  # what came was right
    else:
        with pytest.raises(openai.APIStatusError) as failed:
            client.chat.completions.create(model="gpt-4o", messages=SAY)
        assert failed.value.status_code == 502
    assert sim.state.stats.resumes == 2


def test_headers_and_config_follow_the_build_and_the_account(
    make_service: ServiceFactory, sim: SimServer, token: str
) -> None:
    """Kept headers and sentinel config: a new build id, another token are each sent as such."""
    _era(sim, "e3-strict", require_client_headers=True)  # OAI-Client-Version = build id or 403
    service = make_service(UPSTREAM_PROTOCOL="e3", BUILD_CACHE_SECONDS="0")
    other = mint_access_token(plan="plus")
    old_build = sim.state.config.build_id
    new_build = "prod-" + "ab" * 20
    for build, who in ((old_build, token), (new_build, token), (new_build, other)):
        sim.state.config = sim.state.config.patched({"build_id": build})
        reply = sdk(service, who).chat.completions.create(model="gpt-4o", messages=USER)
        assert reply.choices[0].message.content
        prepare = _requests(sim, "/chat-requirements/prepare")[-1]
        assert decode_token(prepare["body"]["p"])[6] == build
        for call in (prepare, _requests(sim, "/f/conversation")[-1]):
            assert call["headers"]["oai-client-version"] == build
            assert call["headers"]["authorization"] == "Bearer " + who
    devices = [s["headers"]["oai-device-id"] for s in _requests(sim, "/f/conversation")]
    assert devices[0] == devices[1] != devices[2]
