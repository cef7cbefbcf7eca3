"""Injected faults: exact status, body and headers, by directive and by the admin queue."""

from __future__ import annotations

import http.client
import json
import time

import pytest

from chat2api.sim import SimConfig, mint_access_token, reply_text

from .conftest import Client, sse_records

SERVER_ERROR = "Hmm...something seems to have gone wrong. Maybe try me again in a little bit."


def test_rate_limited_by_directive(client: Client) -> None:
    """#sim:fault=rate_limited → 429 model_cap_exceeded with clears_in."""
    reply = client.converse("hi #sim:fault=rate_limited")
    assert reply.status == 429 and reply.headers["content-type"] == "application/json"
    assert reply.json() == {
        "detail": {
            "clears_in": 252,
            "code": "model_cap_exceeded",
            "message": "You have sent too many messages to the model. Please try again later.",
        }
    }


def test_queued_faults_apply_to_next_conversations(client: Client) -> None:
    """POST /_sim/faults queues n faults; the (n+1)th conversation succeeds."""
    queued = client.request("POST", "/_sim/faults", {"fault": "server_error", "count": 2})
    assert queued.json() == {"queued": ["server_error", "server_error"]}
    for _ in range(2):
        reply = client.converse("hi")
        assert reply.status == 500
        assert reply.json() == {"detail": SERVER_ERROR}
    assert client.converse("hi").status == 200
    assert client.request("POST", "/_sim/faults", {"fault": "nope"}).status == 400


def test_expired_and_unusual_activity(client: Client) -> None:
    """expired → 401 token_expired; unusual_activity → 403 JSON detail string."""
    expired = client.converse("x #sim:fault=expired")
    assert expired.status == 401 and expired.json()["detail"]["code"] == "token_expired"
    flagged = client.converse("x #sim:fault=unusual_activity")
    assert flagged.status == 403 and flagged.json() == {
        "detail": "Unusual activity has been detected from your device. Try again later."
    }


def test_account_states(client: Client) -> None:
    """rate_limited and flagged accounts fail the conversation; requirements still work."""
    limited = mint_access_token(state="rate_limited", clears_in=33)
    reply = client.converse("x", token=limited)
    assert reply.status == 429 and reply.json()["detail"]["clears_in"] == 33
    flagged = client.converse("x", token=mint_access_token(state="flagged"))
    assert flagged.status == 403 and "Unusual activity" in flagged.json()["detail"]


def test_cloudflare(client: Client) -> None:
    """cloudflare → 403 HTML challenge page with cf-mitigated: challenge."""
    reply = client.converse("x #sim:fault=cloudflare")
    html = reply.body.decode()
    assert reply.status == 403 and reply.headers["cf-mitigated"] == "challenge"
    assert reply.headers["content-type"].startswith("text/html")
    assert "Just a moment..." in html and "cf-please-wait" in html and "cf_chl_opt" in html


def test_turnstile_fault(client: Client) -> None:
    """A queued turnstile fault marks the next requirements as required and refuses the send."""
    client.request("POST", "/_sim/faults", {"fault": "turnstile", "count": 1})
    req = client.request(
        "POST", "/backend-api/sentinel/chat-requirements", {"p": None}, client.auth()
    ).json()
    assert req["turnstile"]["required"] is True
    reply = client.converse("x")  # a second requirements call, also required while queued
    assert reply.status == 403 and reply.json()["detail"]["code"] == "turnstile_required"
    assert client.converse("x").status == 200


def test_slow(client: Client) -> None:
    """slow sleeps slow_seconds before answering."""
    client.server.state.config = SimConfig(slow_seconds=0.3)
    start = time.monotonic()
    assert client.converse("x #sim:fault=slow").status == 200
    assert time.monotonic() - start >= 0.3


@pytest.mark.parametrize("v1", [False, True])
def test_truncated(client: Client, v1: bool) -> None:
    """truncated ends the body mid-answer (no finish, no [DONE]) and closes the connection."""
    reply = client.converse("x #sim:fault=truncated #sim:words=6", v1=v1)
    assert reply.status == 200 and reply.headers["connection"] == "close"
    body = reply.body.decode()
    assert "[DONE]" not in body and "message_stream_complete" not in body
    assert "finish_details" not in body and "title_generation" not in body
    assert client.server.state.stats.streams_truncated == 1


def test_cut_resets_mid_stream(client: Client) -> None:
    """cut aborts the TCP connection after part of the stream."""
    with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
        client.converse("x #sim:fault=cut #sim:words=40")


@pytest.mark.parametrize("v1", [False, True])
def test_malformed(client: Client, v1: bool) -> None:
    """malformed inserts one data record that is not JSON; the stream then completes."""
    recs = sse_records(client.converse("x #sim:fault=malformed #sim:words=6", v1=v1).body)
    bad = []
    for _, data in recs:
        if data != "[DONE]":
            try:
                json.loads(data)
            except json.JSONDecodeError:
                bad.append(data)
    assert len(bad) == 1 and recs[-1] == (None, "[DONE]")


def test_stream_error_legacy(client: Client) -> None:
    """Legacy stream_error: a {"message": null, "error": "..."} record, then [DONE]."""
    recs = sse_records(client.converse("x #sim:fault=stream_error #sim:words=6").body)
    err = json.loads(recs[-2][1])
    assert err["message"] is None and "stream_error" in err["error"]
    assert recs[-1] == (None, "[DONE]")


def test_stream_error_v1(client: Client) -> None:
    """v1 stream_error: a root add carrying error and error_code, then [DONE]."""
    recs = sse_records(client.converse("x #sim:fault=stream_error #sim:words=6", v1=True).body)
    event, data = recs[-2]
    rec = json.loads(data)
    assert event == "delta" and rec["p"] == "" and rec["o"] == "add"
    assert rec["v"]["error_code"] == "internal_error" and rec["v"]["message"] is None


def test_reset(client: Client) -> None:
    """reset aborts the connection before any response byte."""
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        client.converse("x #sim:fault=reset")


@pytest.mark.parametrize("v1", [False, True])
def test_max_tokens(client: Client, v1: bool) -> None:
    """max_tokens finishes with finish_details.type max_tokens and end_turn true."""
    body = client.converse("x #sim:fault=max_tokens #sim:words=3", v1=v1).body.decode()
    assert '"finish_details":{"type":"max_tokens"' in body and "[DONE]" in body


def test_moderation(client: Client) -> None:
    """moderation emits a blocked moderation record and no assistant answer."""
    recs = sse_records(client.converse("x #sim:fault=moderation", v1=True).body)
    mods = [json.loads(d) for e, d in recs if e is None and '"moderation"' in d]
    assert mods[0]["moderation_response"]["blocked"] is True
    assert not any('"role":"assistant"' in d for _, d in recs)


def test_words_and_delay_directives(client: Client) -> None:
    """#sim:words=N sizes the reply; #sim:delay_ms=N paces the chunks."""
    start = time.monotonic()
    recs = sse_records(client.converse("abc #sim:words=5 #sim:delay_ms=40").body)
    assert time.monotonic() - start >= 0.2
    final = json.loads(recs[-3][1])["message"]
    assert final["content"]["parts"] == [reply_text("abc", 5)]


def test_unknown_fault_is_400(client: Client) -> None:
    """A misspelled fault directive answers 400 instead of being ignored."""
    assert client.converse("x #sim:fault=nope").status == 400


def test_directive_leaves_the_queue_alone(client: Client) -> None:
    """A directive fault wins over the queue and does not consume a queued fault."""
    client.request("POST", "/_sim/faults", {"fault": "server_error", "count": 1})
    assert client.converse("x #sim:fault=unusual_activity").status == 403
    assert client.converse("x").status == 500
    assert client.converse("x").status == 200
