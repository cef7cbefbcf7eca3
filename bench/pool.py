"""Account selection cost: a pool of 10,000 accounts vs a pool of 1, SQLite and Redis.

Four chat2api processes run side by side against one simulator, each with an
``AUTHORIZATION`` code serving its pool: SQLite with 1 account, SQLite with
10,000, Redis with 1, Redis with 10,000 (a private key prefix, deleted at the
end). The same non-stream load (concurrency 32) goes to each in alternating
rounds, so machine noise hits all four alike. Printed: p50/p99 latency and
requests/s per pool, and the ratio 10,000 / 1 for each backend (target
≤ 1.2× end to end).

    python bench/pool.py [--requests 640] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import OpenAIClient, free_port, new_session, percentile, raise_fd_limit, table
from chat2api.pool.pool import AccountPool
from chat2api.pool.tokens import parse_token
from chat2api.settings import load_settings
from chat2api.sim import mint_access_token
from chat2api.store import open_store
from chat2api.upstream.auth import OAuthClient
from chat2api.upstream.http import SessionPool

CODE = "bench-pool-code"
REDIS_URL = "redis://127.0.0.1:6379/0"
CONCURRENCY = 32


@dataclass
class Pool:
    name: str
    backend: str
    size: int
    env: dict[str, str]
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    requests: int = 0


def _wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def _fill(env: dict[str, str], size: int) -> None:
    settings = load_settings(env, env_file=None)
    store = open_store(settings)
    try:
        pool = AccountPool(store, OAuthClient(SessionPool(), "http://127.0.0.1:9"))
        tokens = [parse_token(mint_access_token(account_id=f"b{i}")) for i in range(size)]
        await pool.add_tokens(tokens)
    finally:
        await store.close()


async def _clear_redis(prefix: str) -> None:
    from chat2api.store.redis import RedisStore

    store = RedisStore(REDIS_URL, prefix=prefix)
    try:
        await store.clear_accounts()
        keys = [k async for k in store._redis.scan_iter(match=f"{prefix}:*")]
        if keys:
            await store._redis.delete(*keys)
    finally:
        await store.close()


async def _round(pool: Pool, requests: int) -> None:
    session = new_session(CONCURRENCY * 2)
    client = OpenAIClient(session, f"http://127.0.0.1:{pool.port}", CODE)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            elapsed, _ = await client.complete(f"say exactly: n{i}")
            pool.latencies.append(elapsed)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    pool.seconds += time.perf_counter() - started
    pool.requests += requests
    await session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=640, help="requests per round and pool")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    raise_fd_limit()
    prefix = f"c2a-bench-{uuid.uuid4().hex[:8]}"
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="chat2api-pool-") as tmp:
        workdir = Path(tmp)
        sim_port = free_port()
        sim_url = f"http://127.0.0.1:{sim_port}"
        log = (workdir / "sim.log").open("wb")
        command = [str(Path(sys.executable).with_name("chat2api"))]
        sim = subprocess.Popen(
            [*command, "sim", "--host", "127.0.0.1", "--port", str(sim_port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        procs.append(sim)
        base = {
            "CHATGPT_BASE_URL": sim_url,
            "AUTHORIZATION": CODE,
            "RETRY_TIMES": "0",
            "ACCOUNT_CONCURRENCY": str(CONCURRENCY * 2),
            "LOG_LEVEL": "WARNING",
            "POW_WORKERS": "1",
        }
        pools = [
            Pool("sqlite, 1 account", "sqlite", 1, base | {"DATA_DIR": str(workdir / "s1")}),
            Pool("sqlite, 10,000", "sqlite", 10_000, base | {"DATA_DIR": str(workdir / "s2")}),
            Pool(
                "redis, 1 account",
                "redis",
                1,
                base | {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix + "-1"},
            ),
            Pool(
                "redis, 10,000",
                "redis",
                10_000,
                base | {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix + "-2"},
            ),
        ]
        try:
            _wait(sim_url + "/", sim)
            for pool in pools:
                asyncio.run(_fill(pool.env, pool.size))
                pool.port = free_port()
                out = (workdir / f"api-{pool.port}.log").open("wb")
                pool.proc = subprocess.Popen(
                    [*command, "serve", "--host", "127.0.0.1", "--port", str(pool.port)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                    env=os.environ | pool.env,
                )
                procs.append(pool.proc)
                _wait(f"http://127.0.0.1:{pool.port}/v1/models", pool.proc)
                print(f"  {pool.name}: ready", flush=True)
            for pool in pools:  # warm-up, not counted
                asyncio.run(_round(pool, CONCURRENCY * 2))
                pool.latencies.clear()
                pool.seconds, pool.requests = 0.0, 0
            for r in range(args.rounds):
                order = pools if r % 2 == 0 else list(reversed(pools))
                for pool in order:
                    asyncio.run(_round(pool, args.requests))
                print(f"  round {r + 1}/{args.rounds} done", flush=True)
        finally:
            for proc in reversed(procs):
                _stop(proc)
            for suffix in ("-1", "-2"):
                asyncio.run(_clear_redis(prefix + suffix))
            log.close()

    rows = []
    for pool in pools:
        rows.append(
            [
                pool.name,
                str(pool.requests),
                f"{percentile(pool.latencies, 50) * 1000:.1f}",
                f"{percentile(pool.latencies, 99) * 1000:.1f}",
                f"{pool.requests / pool.seconds:.0f}",
            ]
        )
    print()
    print(f"non-stream completions, concurrency {CONCURRENCY}, {args.rounds} rounds")
    print(table(["pool", "requests", "p50 ms", "p99 ms", "req/s"], rows))
    print()
    print("ratios 10,000 accounts / 1 account (same run, alternating rounds):")
    for backend in ("sqlite", "redis"):
        one, many = (p for p in pools if p.backend == backend)
        p50 = percentile(many.latencies, 50) / percentile(one.latencies, 50)
        rps = (many.requests / many.seconds) / (one.requests / one.seconds)
        verdict = "ok" if p50 <= 1.2 else "MISSED"
        print(f"  {backend:6}  p50 {p50:.2f}x (target <= 1.2x: {verdict}), throughput {rps:.2f}x")


if __name__ == "__main__":
    main()
