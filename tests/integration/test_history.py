"""HISTORY_DISABLED=false: answers carry upstream ids, and passing them back continues."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from chat2api.sim import SimServer, mint_access_token
from servers import ServiceFactory, sdk

ALL_ERAS = True  # each test runs against the simulator in every era (conftest.ERAS)

FIRST = [{"role": "user", "content": "say exactly: Noted, the code is 42."}]


def test_ids_returned_and_conversation_continued(
    make_service: ServiceFactory, sim: SimServer, token: str
) -> None:
    """The second request sends only the new turn; the model still sees the first."""
    client = sdk(make_service(HISTORY_DISABLED="false"), token)
    first = client.chat.completions.create(model="gpt-4o", messages=FIRST)
    extra = first.model_extra or {}
    assert extra["conversation_id"] and extra["message_id"]
    (body,) = [r["body"] for r in sim.state.requests if r["path"].endswith("/conversation")]
    assert body["history_and_training_disabled"] is False
    history = [
        *FIRST,
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "say exactly: continued"},
    ]
    second = client.chat.completions.create(
        model="gpt-4o",
        messages=history,
        extra_body={"conversation_id": extra["conversation_id"], "message_id": extra["message_id"]},
    )
    assert second.choices[0].message.content == "continued"
    assert (second.model_extra or {})["conversation_id"] == extra["conversation_id"]
    assert [text for _, text in sim.state.last_request_messages()] == ["say exactly: continued"]
    assert any("code is 42" in text for _, text in sim.state.last_prompt())


def test_stream_chunks_carry_ids(make_service: ServiceFactory, sim: SimServer, token: str) -> None:
    """Streamed chunks carry the upstream conversation and message ids."""
    client = sdk(make_service(HISTORY_DISABLED="false"), token)
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=FIRST, stream=True))
    ids = {(c.model_extra or {}).get("conversation_id") for c in chunks}
    assert len(ids) == 1 and None not in ids


def test_continued_by_another_instance(
    make_service: ServiceFactory, sim: SimServer, tmp_path: Path
) -> None:
    """A second service sharing the store continues a pool conversation on its account."""
    shared = {
        "HISTORY_DISABLED": "false",
        "DATA_DIR": str(tmp_path / "shared"),
        "AUTHORIZATION": "code",
    }
    one, two = make_service(**shared), make_service(**shared)
    from servers import add_tokens

    accounts = [mint_access_token(account_id=f"h{i}") for i in range(3)]
    add_tokens(one.settings, *accounts)
    first = sdk(one, "code").chat.completions.create(model="gpt-4o", messages=FIRST)
    extra = first.model_extra or {}
    used = sim.state.requests[-1]["headers"]["authorization"]
    second = sdk(two, "code").chat.completions.create(
        model="gpt-4o",
        messages=[*FIRST, {"role": "user", "content": "say exactly: again"}],
        extra_body={"conversation_id": extra["conversation_id"]},
    )
    assert second.choices[0].message.content == "again"
    assert sim.state.requests[-1]["headers"]["authorization"] == used  # same account


def test_unknown_conversation_is_404(make_service: ServiceFactory, token: str) -> None:
    """A conversation_id this deployment did not create for this key is not found."""
    client = sdk(make_service(HISTORY_DISABLED="false"), token)
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(
            model="gpt-4o", messages=FIRST, extra_body={"conversation_id": "nope"}
        )
    assert isinstance(info.value.body, dict) and info.value.body["param"] == "conversation_id"


def test_history_disabled_refuses_continuation(make_service: ServiceFactory, token: str) -> None:
    """With HISTORY_DISABLED=true a conversation_id is refused with a clear 400."""
    client = sdk(make_service(), token)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="gpt-4o", messages=FIRST, extra_body={"conversation_id": "x"}
        )
    assert "HISTORY_DISABLED" in str(info.value)
