"""The pure parts of the E3 send path: era choice, body reshaping, sentinel answers."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from chat2api.errors import ChallengeRequired, ProofOfWorkTooHard, UpstreamUnavailable
from chat2api.upstream.e3 import conversation_body, prepare_body
from chat2api.upstream.eras import EraChoice
from chat2api.upstream.requirements import read_requirements

BASE = "https://chatgpt.example"


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_fixed_settings_never_change() -> None:
    """UPSTREAM_PROTOCOL=e2/e3 ignore what the upstream says."""
    for setting in ("e2", "e3"):
        choice = EraChoice(setting)  # type: ignore[arg-type]
        choice.e3_missing(BASE, "sentinel prepare", 404)
        choice.e2_refused(BASE)
        assert choice.era(BASE) == setting


def test_auto_falls_back_and_probes_again(caplog: pytest.LogCaptureFixture) -> None:
    """auto: E3 first; a 404 means E2 for recheck_seconds, then E3 is tried again."""
    clock = Clock()
    choice = EraChoice("auto", recheck_seconds=60, clock=clock)
    assert choice.era(BASE) == "e3"
    with caplog.at_level(logging.INFO, logger="chat2api.upstream.eras"):
        choice.e3_missing(BASE, "sentinel prepare", 404)
        assert choice.era(BASE) == "e2"
        assert choice.era("https://other.example") == "e3"  # per base URL
        clock.now += 59
        assert choice.era(BASE) == "e2"
        clock.now += 2
        assert choice.era(BASE) == "e3"
    assert sum("using E2" in r.getMessage() for r in caplog.records) == 1
    assert sum("probing E3 again" in r.getMessage() for r in caplog.records) == 1


def test_auto_refusal_pins_e3() -> None:
    """A 403 'unusual activity' on E2 moves the base URL to E3; a later 404 does not undo it."""
    clock = Clock()
    choice = EraChoice("auto", recheck_seconds=60, clock=clock)
    choice.e3_missing(BASE, "sentinel prepare", 404)
    assert choice.e2_refused(BASE) is True
    assert choice.era(BASE) == "e3"
    assert not choice.may_fall_back(BASE)
    choice.e3_missing(BASE, "conversation", 404)
    assert choice.era(BASE) == "e3"
    assert choice.e2_refused(BASE) is False  # already E3: nothing changes
    choice.e3_missing(BASE, "conversation", 404, force=True)
    assert choice.era(BASE) == "e2"


E2_BODY: dict[str, Any] = {
    "action": "next",
    "messages": [
        {
            "id": "m1",
            "author": {"role": "user"},
            "content": {"content_type": "text", "parts": ["Say hi"]},
            "metadata": {"attachments": [{"id": "file-1"}]},
        }
    ],
    "conversation_mode": {"kind": "primary_assistant"},
    "model": "gpt-4o",
    "parent_message_id": "c6a1f0d2-9e3b-4a7c-8d15-2b4e6f8a0c31",
    "timezone_offset_min": -480,
    "history_and_training_disabled": True,
    "force_use_sse": True,
    "websocket_request_id": "w",
    "supported_encodings": ["v1"],
    "system_hints": [],
}


def test_e3_body_new_conversation() -> None:
    """A new conversation's E3 body: client-created-root, create_time, composer metadata."""
    body = conversation_body(E2_BODY, now=1767636000.1234)
    assert body["parent_message_id"] == "client-created-root"
    assert body["client_prepare_state"] == "success"
    assert body["supported_encodings"] == ["v1"] and body["supports_buffering"] is True
    assert "websocket_request_id" not in body and "force_use_sse" not in body
    message = body["messages"][0]
    assert message["create_time"] == 1767636000.123
    assert message["metadata"]["attachments"] == [{"id": "file-1"}]
    assert message["metadata"]["selected_sources"] == []
    assert body["model"] == "gpt-4o" and body["history_and_training_disabled"] is True
    assert E2_BODY["parent_message_id"] != "client-created-root"  # the input is not changed


def test_e3_body_follow_up_keeps_parent() -> None:
    """A continued conversation keeps its id and the parent message id it names."""
    follow = E2_BODY | {"conversation_id": "conv-1", "parent_message_id": "asst-9"}
    body = conversation_body(follow)
    assert (body["conversation_id"], body["parent_message_id"]) == ("conv-1", "asst-9")
    prepared = prepare_body(follow)
    assert "messages" not in prepared
    assert prepared["client_prepare_state"] == "none"
    assert prepared["fork_from_shared_post"] is False
    assert prepared["conversation_id"] == "conv-1"


def test_requirements_read_pow_and_challenges() -> None:
    """A prepare answer gives its token, the proof asked for, and unsolved challenges by name."""
    needs = read_requirements(
        {
            "prepare_token": "pt",
            "proofofwork": {"required": True, "seed": "0.5", "difficulty": "0FFFFF"},
            "turnstile": {"required": True, "dx": "x"},
            "so": {"required": True},
        },
        token_key="prepare_token",
        pow_limit="000032",
    )
    assert (needs.token, needs.pow_seed, needs.pow_difficulty) == ("pt", "0.5", "0fffff")
    assert needs.challenge == "turnstile+so"


@pytest.mark.parametrize(
    ("answer", "error", "named"),
    [
        ({"token": "t", "force_login": True}, ChallengeRequired, "force_login"),
        ({"token": "t", "arkose": {"required": True}}, ChallengeRequired, "arkose"),
        ({"persona": "x"}, UpstreamUnavailable, "no token"),
        (
            {"token": "t", "proofofwork": {"required": True, "seed": "s", "difficulty": "00001"}},
            ProofOfWorkTooHard,
            "00001",
        ),
    ],
)
def test_requirements_refusals(answer: dict[str, Any], error: type[Exception], named: str) -> None:
    """What cannot be answered raises its own typed error, naming what was required."""
    with pytest.raises(error) as caught:
        read_requirements(answer, token_key="token", pow_limit="000032")
    assert named in str(caught.value)
