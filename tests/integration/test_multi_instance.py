"""Two chat2api processes sharing one Redis see one pool: cooldowns, dead marks, refresh locks."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from chat2api.settings import Settings, load_settings
from chat2api.sim import SimServer, mint_access_token, mint_refresh_token
from chat2api.store import Account
from chat2api.store.redis import RedisStore
from servers import SENTINEL_START, add_tokens, bearers, stored_accounts

REDIS_URL = "redis://127.0.0.1:6379/0"
CODE = "shared-code"
USER = [{"role": "user", "content": "say exactly: ok"}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Instance:
    """``chat2api serve`` in its own process on a loopback port."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.port = _free_port()
        self.log = (workdir / f"serve-{self.port}.log").open("wb")
        command = [sys.executable, "-m", "chat2api", "serve", "--host", "127.0.0.1"]
        self.proc = subprocess.Popen(
            [*command, "--port", str(self.port)],
            env=os.environ | env,
            cwd=workdir,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{self.port}/v1", api_key=CODE, max_retries=0
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("chat2api instance did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.client.close()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def prefix() -> Iterator[str]:
    """A Redis key prefix of this test alone, deleted afterwards."""
    name = f"c2a-test-{uuid.uuid4().hex[:8]}"
    yield name

    async def cleanup() -> None:
        store = RedisStore(REDIS_URL, prefix=name)
        client = store._redis  # only to delete this test's keys
        keys = [k async for k in client.scan_iter(match=f"{name}:*")]
        if keys:
            await client.delete(*keys)
        await store.close()

    asyncio.run(cleanup())


@pytest.fixture
def instances(sim: SimServer, prefix: str, tmp_path: Path) -> Iterator[tuple[Instance, Instance]]:
    """Two chat2api processes on one Redis prefix, against the shared simulator."""
    env = {
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": prefix,
        "AUTHORIZATION": CODE,
        "CHATGPT_BASE_URL": sim.base_url,
        "OAUTH_BASE_URL": sim.base_url,
        "POW_WORKERS": "0",
        "ACCOUNT_CONCURRENCY": "20",
        "LOG_LEVEL": "WARNING",
        "HISTORY_DISABLED": "false",
    }
    pair = (Instance(env, tmp_path), Instance(env, tmp_path))
    try:
        for instance in pair:
            instance.wait_ready()
        yield pair
    finally:
        for instance in pair:
            instance.stop()


def _settings(prefix: str) -> Settings:
    return load_settings({"REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix}, env_file=None)


def _add(prefix: str, *tokens: str) -> list[str]:
    return add_tokens(_settings(prefix), *tokens)


def _get(prefix: str, account_id: str) -> Account:
    return stored_accounts(_settings(prefix))[account_id]


def _tried(sim: SimServer) -> list[str]:
    return bearers(sim, *SENTINEL_START)


@pytest.mark.slow
def test_cooldown_and_dead_marks_are_shared(
    instances: tuple[Instance, Instance], sim: SimServer, prefix: str
) -> None:
    """An account cooled or killed by one instance is skipped by the other."""
    first, second = instances
    limited = mint_access_token(state="rate_limited", clears_in=300, account_id="lim")
    expired = mint_access_token(state="expired", account_id="exp")
    good = mint_access_token(account_id="good")
    limited_id, expired_id, _ = _add(prefix, limited, expired, good)
    # Round-robin is shared too: the first instance meets "limited", then "expired".
    first.client.chat.completions.create(model="gpt-4o", messages=USER)
    first.client.chat.completions.create(model="gpt-4o", messages=USER)
    assert _get(prefix, limited_id).cooldowns["gpt-4o"] > time.time() + 250
    assert _get(prefix, expired_id).status == "dead"
    seen = len(_tried(sim))
    for _ in range(4):
        second.client.chat.completions.create(model="gpt-4o", messages=USER)
    assert _tried(sim)[seen:] == [good] * 4


@pytest.mark.slow
def test_refresh_is_single_flight_across_instances(
    instances: tuple[Instance, Instance], sim: SimServer, prefix: str
) -> None:
    """Concurrent requests on two instances needing one refresh make one exchange."""
    sim.state.config = sim.state.config.patched({"refresh_delay": 0.5})
    _add(prefix, mint_refresh_token(account_id="shared-rt"))
    errors: list[BaseException] = []

    def call(instance: Instance) -> None:
        try:
            instance.client.chat.completions.create(model="gpt-4o", messages=USER)
        except openai.APIError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(instances[i % 2],)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sim.state.stats.refreshes == 1
    assert sim.state.stats.conversations == 10


@pytest.mark.slow
def test_history_continued_by_the_other_process(
    instances: tuple[Instance, Instance], sim: SimServer, prefix: str
) -> None:
    """A conversation started on one process continues on the other, on the same account."""
    first, second = instances
    _add(prefix, *(mint_access_token(account_id=f"hist-{i}") for i in range(3)))
    ask = [{"role": "user", "content": "say exactly: the password is swordfish"}]
    started = first.client.chat.completions.create(model="gpt-4o", messages=ask)
    ids = started.model_extra or {}
    account = _tried(sim)[-1]
    more = [
        *ask,
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "say exactly: recalled"},
    ]
    continued = second.client.chat.completions.create(
        model="gpt-4o", messages=more, extra_body={"conversation_id": ids["conversation_id"]}
    )
    assert continued.choices[0].message.content == "recalled"
    assert _tried(sim)[-1] == account
    assert [text for _, text in sim.state.last_request_messages()] == ["say exactly: recalled"]
    assert any("swordfish" in text for _, text in sim.state.last_prompt())
