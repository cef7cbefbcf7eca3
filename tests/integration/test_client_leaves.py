"""A client that leaves before a non-streamed answer is ready lets its upstream turn go."""

from __future__ import annotations

import socket
import time

import orjson
import pytest

from chat2api.sim import SimServer, mint_access_token
from servers import ServiceFactory, add_tokens, sdk

CODE = "pool-code-leave"
WORDS, DELAY_MS = 60, 100
SLOW = f"slow #sim:words={WORDS} #sim:delay_ms={DELAY_MS}"
ANSWER_SECONDS = WORDS * DELAY_MS / 1000  # at least this long, left alone


def _wait(sim: SimServer, counter: str, within: float) -> float:
    """Seconds until the simulator's ``counter`` reached 1 (at most ``within``)."""
    started = time.monotonic()
    while getattr(sim.state.stats, counter) < 1 and time.monotonic() - started < within:
        time.sleep(0.02)
    return time.monotonic() - started


def _send(port: int, path: str, body: dict[str, object]) -> socket.socket:
    """A raw non-streamed POST with the pool code, sent and left unread."""
    raw = orjson.dumps(body)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {CODE}\r\nContent-Length: {len(raw)}\r\n\r\n"
    )
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(head.encode() + raw)
    return conn


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/chat/completions",
            {"model": "gpt-4o", "messages": [{"role": "user", "content": SLOW}]},
        ),
        ("/v1/responses", {"model": "gpt-4o", "input": SLOW}),
        ("/v1/images/generations", {"prompt": SLOW + " #sim:image"}),
    ],
)
def test_non_stream_disconnect_frees_the_account(
    make_service: ServiceFactory, sim: SimServer, path: str, body: dict[str, object]
) -> None:
    """Closing a non-stream request cancels the upstream turn and the account serves again."""
    service = make_service(
        AUTHORIZATION=CODE,
        OAUTH_BASE_URL=sim.base_url,
        ACCOUNT_CONCURRENCY="1",
        POOL_WAIT_SECONDS="1",
    )
    add_tokens(service.settings, mint_access_token(account_id="leave-acct"))
    with _send(service.port, path, body):
        _wait(sim, "streams_started", within=10)
        assert sim.state.stats.streams_started == 1
    waited = _wait(sim, "streams_cancelled", within=2 * ANSWER_SECONDS)
    assert sim.state.stats.streams_cancelled == 1, "the upstream turn ran on"
    assert sim.state.stats.streams_completed == 0
    # The client left as the answer began: the cancel came early in it, not near its end.
    assert waited < ANSWER_SECONDS / 2, f"cancelled only after {waited:.2f}s"
    # The one slot is free again: a new request does not wait for it (POOL_WAIT_SECONDS=1).
    done = sdk(service, CODE).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "say exactly: ok"}]
    )
    assert done.choices[0].message.content == "ok"
