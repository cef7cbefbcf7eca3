"""``serve --workers N``, and the per-account limit held across processes on one store."""

from __future__ import annotations

import asyncio
import contextlib
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

import httpx2 as httpx
import psutil
import pytest

from chat2api.settings import load_settings
from chat2api.sim import SimServer, mint_access_token
from chat2api.store.redis import RedisStore
from chat2api.workers import worker_count
from servers import add_tokens

REDIS_URL = "redis://127.0.0.1:6379/0"
CODE = "workers-code"
SLOW = "say something #sim:words=20 #sim:delay_ms=50"  # about one second of answer
QUICK = "say exactly: ok"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Serve:
    """``chat2api serve`` as a subprocess on a loopback port; stopped by PID."""

    def __init__(self, env: dict[str, str], workdir: Path, *args: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"serve-{self.port}.log"
        command = [sys.executable, "-m", "chat2api", "serve", "--host", "127.0.0.1"]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*command, "--port", str(self.port), *args],
                env=os.environ | env,
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/v1/models", timeout=1).status_code < 500:
                    break
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"serve did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def chat(self, text: str, timeout: float = 30) -> httpx.Response:
        return httpx.post(
            self.url + "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": text}]},
            headers={"Authorization": f"Bearer {CODE}"},
            timeout=timeout,
        )

    def workers(self) -> list[int]:
        """PIDs of the serving processes: the worker children, or the process itself."""
        children = []
        for child in psutil.Process(self.proc.pid).children():
            try:
                if "chat2api" in " ".join(child.cmdline()):
                    children.append(child.pid)
            except psutil.NoSuchProcess:  # a worker that died while we looked (or a zombie)
                continue
        return children or [self.proc.pid]

    def kill_tree(self) -> None:
        """SIGKILL the process and everything it started, as an OOM kill would."""
        tree = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(True)]
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            children = psutil.Process(self.proc.pid).children(recursive=True)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            _, alive = psutil.wait_procs(children, timeout=5)
            for child in alive:
                child.kill()


@pytest.fixture(params=["sqlite", "redis"])
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Where the instances of a test keep their pool: one SQLite file, or one Redis prefix."""
    if request.param == "sqlite":
        yield {"DATA_DIR": str(tmp_path / "data")}
        return
    prefix = f"c2a-workers-{uuid.uuid4().hex[:8]}"
    yield {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix}

    async def cleanup() -> None:
        store = RedisStore(REDIS_URL, prefix=prefix)
        client = store._redis  # only to delete this test's keys
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await store.close()

    asyncio.run(cleanup())


def _env(sim: SimServer, store_env: dict[str, str], **more: str) -> dict[str, str]:
    return {
        "AUTHORIZATION": CODE,
        "CHATGPT_BASE_URL": sim.base_url,
        "OAUTH_BASE_URL": sim.base_url,
        "POW_WORKERS": "0",
        "LOG_LEVEL": "WARNING",
        "ACCOUNT_CONCURRENCY": "1",
        **store_env,
        **more,
    }


def _one_account(store_env: dict[str, str]) -> None:
    add_tokens(load_settings(dict(store_env), env_file=None), mint_access_token(account_id="one"))


def _at_once(calls: list[tuple[Serve, str]]) -> list[int]:
    """Send the requests together (one thread each); their status codes."""
    statuses: list[int] = [0] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i: int) -> None:
        serve, text = calls[i]
        barrier.wait()
        statuses[i] = serve.chat(text).status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


@pytest.mark.slow
def test_limit_holds_across_instances(
    sim: SimServer, store_env: dict[str, str], tmp_path: Path
) -> None:
    """Two processes on one store, ACCOUNT_CONCURRENCY=1, one account: one answer at a time."""
    _one_account(store_env)
    env = _env(sim, store_env, POOL_WAIT_SECONDS="0")
    first, second = Serve(env, tmp_path), Serve(env, tmp_path)
    try:
        statuses = _at_once([(first, SLOW), (second, SLOW)] * 3)
        assert sorted(statuses) == [200, 503, 503, 503, 503, 503]
        # Freed at the end of the answer, for either process.
        assert second.chat(QUICK).status_code == 200
        assert first.chat(QUICK).status_code == 200
    finally:
        first.stop()
        second.stop()


@pytest.mark.slow
def test_workers_share_the_port_and_the_limit(sim: SimServer, tmp_path: Path) -> None:
    """``--workers 2``: two processes on one port, one account limit; a killed one is replaced."""
    store_env = {"DATA_DIR": str(tmp_path / "data")}
    _one_account(store_env)
    serve = Serve(_env(sim, store_env, POOL_WAIT_SECONDS="20"), tmp_path, "--workers", "2")
    try:
        workers = serve.workers()
        assert len(workers) == 2 and serve.proc.pid not in workers
        started = time.monotonic()
        assert _at_once([(serve, SLOW)] * 4) == [200] * 4
        # One account, one slot: four answers of ~1 s each came one after another.
        assert time.monotonic() - started > 3.0
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while len(serve.workers()) < 2 or workers[0] in serve.workers():
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            time.sleep(0.1)
        assert serve.chat(QUICK).status_code == 200
    finally:
        serve.stop()
    assert serve.proc.returncode == 0


@pytest.mark.slow
def test_killed_holder_blocks_no_longer_than_the_lease(
    sim: SimServer, store_env: dict[str, str], tmp_path: Path
) -> None:
    """kill -9 of the process streaming on the only account frees it within SLOT_LEASE_SECONDS."""
    lease = 1.5
    _one_account(store_env)
    env = _env(sim, store_env, POOL_WAIT_SECONDS="30", SLOT_LEASE_SECONDS=str(lease))
    holder, other = Serve(env, tmp_path), Serve(env, tmp_path)
    try:
        # Warm: the first answer starts the token counting worker (about a second).
        assert other.chat(QUICK).status_code == 200
        long = "say something #sim:words=400 #sim:delay_ms=50"  # 20 s if left alone
        with httpx.stream(
            "POST",
            holder.url + "/v1/chat/completions",
            json={
                "model": "gpt-4o",
                "stream": True,
                "messages": [{"role": "user", "content": long}],
            },
            headers={"Authorization": f"Bearer {CODE}"},
            timeout=30,
        ) as response:
            assert response.status_code == 200
            chunks = response.iter_raw()  # kept: a dropped iterator closes the stream
            next(chunks)  # the account is leased and answering
            outcome: list[tuple[int, float]] = []
            waiter = threading.Thread(
                target=lambda: outcome.append((other.chat(QUICK).status_code, time.monotonic()))
            )
            waiter.start()
            time.sleep(2 * lease)  # past one lease time: renewals keep it held
            assert not outcome, "the other process got the account while it was held"
            killed = time.monotonic()
            holder.kill_tree()
        waiter.join(30)
        assert outcome and outcome[0][0] == 200
        # Freed by the lease: ten leases after the kill is long past it, and well
        # short of the 30 s (POOL_WAIT_SECONDS) the waiter was willing to wait.
        assert outcome[0][1] - killed < 10 * lease
    finally:
        other.stop()
        holder.stop()


def test_worker_count_values() -> None:
    """``--workers`` takes auto (the CPUs this process may use) or 1..64, nothing else."""
    assert worker_count("auto") == len(os.sched_getaffinity(0))
    assert worker_count(" AUTO ") == worker_count("auto")
    assert worker_count("3") == 3
    for bad in ("0", "65", "-1", "two", ""):
        with pytest.raises(ValueError, match="--workers"):
            worker_count(bad)


def test_bad_workers_option_is_a_usage_error(tmp_path: Path) -> None:
    """``serve --workers 0`` exits with status 2 and says why, before listening."""
    done = subprocess.run(
        [sys.executable, "-m", "chat2api", "serve", "--workers", "0", "--port", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--workers must be between 1 and 64, not 0" in done.stderr
