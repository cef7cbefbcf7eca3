"""Store outages are answered as outages: 503 ``store_unavailable``, reconnects, no silent switch.

Redis runs as a real ``redis-server`` this module starts on its own
127.0.0.1 port and stops and restarts by PID; SQLite is made unwritable
with ``PRAGMA query_only`` on the service's own connection.
"""

from __future__ import annotations

import logging
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from chat2api.sim import SimServer, mint_access_token
from servers import ServiceFactory, ServiceServer, add_tokens, send_path

CODE = "pool-code-outage"
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "say exactly: ok"}]}


class RedisServer:
    """One ``redis-server`` on 127.0.0.1, without persistence, stopped and started by PID."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def kill_clients(self) -> None:
        """Close every client connection from the server side (what a restart does to them)."""
        subprocess.run(
            ["redis-cli", "-p", str(self.port), "CLIENT", "KILL", "TYPE", "normal"],
            check=True,
            capture_output=True,
        )


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server for one test."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def _pooled(make_service: ServiceFactory, sim: SimServer, redis_url: str) -> ServiceServer:
    service = make_service(
        AUTHORIZATION=CODE,
        OAUTH_BASE_URL=sim.base_url,
        REDIS_URL=redis_url,
        REDIS_PREFIX=f"outage-{secrets.token_hex(4)}",
    )
    add_tokens(service.settings, mint_access_token(account_id="outage-acct"))
    return service


def _chat(service: ServiceServer, **extra: object) -> httpx.Response:
    return httpx.post(
        service.openai_base_url + "/chat/completions",
        json=BODY | extra,
        headers={"Authorization": f"Bearer {CODE}"},
        timeout=30,
    )


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


def test_redis_down_is_503_and_back_without_restart(
    make_service: ServiceFactory,
    sim: SimServer,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis down: 503 store_unavailable with Retry-After; back up: the next request works."""
    caplog.set_level(logging.INFO)
    service = _pooled(make_service, sim, redis_server.url)
    assert _chat(service).status_code == 200
    redis_server.kill_clients()  # every pooled connection is now stale
    assert _chat(service).status_code == 200, "a stale connection was not replaced"
    redis_server.stop()
    for extra in ({}, {"stream": True}):
        down = _chat(service, **extra)
        assert down.status_code == 503
        assert down.headers["retry-after"] == "5"
        assert down.json()["error"]["code"] == "store_unavailable"
        assert set(down.json()["error"]) == {"message", "type", "param", "code"}
    _no_tracebacks(caplog)


def test_redis_back_empty_never_goes_login_free(
    make_service: ServiceFactory, sim: SimServer, redis_server: RedisServer
) -> None:
    """A pool code whose Redis came back empty gets a 503, not the login-free flow."""
    service = _pooled(make_service, sim, redis_server.url)
    assert _chat(service).status_code == 200
    redis_server.stop()
    redis_server.start()  # no persistence: the accounts are gone
    lost = _chat(service)
    assert lost.status_code == 503
    assert lost.json()["error"]["code"] == "pool_lost"
    assert not [r for r in sim.state.requests if r["path"].startswith("/backend-anon")]
    add_tokens(service.settings, mint_access_token(account_id="outage-acct-2"))
    again = _chat(service)
    assert again.status_code == 200, again.text
    assert sim.state.requests[-1]["path"] == send_path(sim)


def test_stream_outlives_a_redis_outage(
    make_service: ServiceFactory,
    sim: SimServer,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stream running when Redis goes away still ends with its finish chunk and [DONE]."""
    caplog.set_level(logging.INFO)
    service = _pooled(make_service, sim, redis_server.url)
    slow = {"messages": [{"role": "user", "content": "x #sim:words=20 #sim:delay_ms=50"}]}
    with httpx.stream(
        "POST",
        service.openai_base_url + "/chat/completions",
        json=BODY | slow | {"stream": True},
        headers={"Authorization": f"Bearer {CODE}"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        chunks = response.iter_raw()
        first = next(chunks)
        redis_server.stop()
        raw = first + b"".join(chunks)
    assert raw.endswith(b"data: [DONE]\n\n")
    assert b'"finish_reason":"stop"' in raw
    assert any("store write skipped" in r.getMessage() for r in caplog.records)
    _no_tracebacks(caplog)


def test_sqlite_unwritable_still_serves(
    make_service: ServiceFactory, sim: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    """With SQLite refusing writes, accounts are still chosen; writes that must happen are 503s."""
    caplog.set_level(logging.INFO)
    service = make_service(AUTHORIZATION=CODE, OAUTH_BASE_URL=sim.base_url, ADMIN_KEY="k" * 20)
    tokens = [mint_access_token(account_id=f"ro-{i}") for i in range(2)]
    add_tokens(service.settings, *tokens)
    db = service.app.state.chat2api.store._db  # the service's own connection
    db.execute("PRAGMA query_only=1")  # every write now fails as on a read-only file
    try:
        for _ in range(4):
            assert _chat(service).status_code == 200
        used = [
            r["headers"]["authorization"].removeprefix("Bearer ")
            for r in sim.state.requests
            if r["path"] == send_path(sim)
        ]
        assert sorted(used) == sorted(tokens * 2), "the rotation stopped without its counter"
        added = httpx.post(
            service.base_url + "/tokens/api/accounts",
            json={"tokens": mint_access_token(account_id="ro-new")},
            headers={"Authorization": "Bearer " + "k" * 20},
        )
        assert added.status_code == 503
        assert added.json()["error"]["code"] == "store_unavailable"
    finally:
        db.execute("PRAGMA query_only=0")
    assert _chat(service).status_code == 200
    assert any("rotating accounts locally" in r.getMessage() for r in caplog.records)
    _no_tracebacks(caplog)


def test_sqlite_full_disk_still_serves(
    make_service: ServiceFactory, sim: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite unable to grow (max_page_count): chats go on, storing a response is a 503."""
    caplog.set_level(logging.INFO)
    service = make_service(AUTHORIZATION=CODE, OAUTH_BASE_URL=sim.base_url)
    add_tokens(service.settings, mint_access_token(account_id="full-disk"))
    db = service.app.state.chat2api.store._db  # the service's own connection
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count={pages}")  # as if the disk were full
    try:
        assert _chat(service).status_code == 200
        stored = httpx.post(
            service.openai_base_url + "/responses",
            json={"model": "gpt-4o", "input": "say exactly: ok " + "x" * 200_000, "store": True},
            headers={"Authorization": f"Bearer {CODE}"},
            timeout=30,
        )
        assert stored.status_code == 503, stored.text
        assert stored.json()["error"]["code"] == "store_unavailable"
        assert stored.headers["retry-after"] == "5"
        assert _chat(service).status_code == 200
    finally:
        db.execute("PRAGMA max_page_count=1073741823")
    assert any("SQLite store unavailable" in r.getMessage() for r in caplog.records)
    _no_tracebacks(caplog)
