"""Overhead of chat2api on non-stream completions: ``python bench/overhead.py`` (~1 min).

Starts the simulator and one chat2api process (subprocesses, loopback, ephemeral
ports) and, at concurrency 1, 16 and 64, sends the same load two ways:

* direct: the lean client (``_lean``: raw asyncio HTTP/1.1) makes chat2api's
  upstream calls itself in the era and encoding chat2api is started with
  (``--era``, ``--encoding``; E3: prepare, proof, finalize, conduit prepare,
  conversation read to ``[DONE]``);
* chat2api: ``POST /v1/chat/completions`` (``stream: false``) to chat2api by
  the same lean client; chat2api makes those calls for it;
* curl-direct, curl-chat2api: the same through curl_cffi, the second line.

Each level has a warm-up, then rounds alternating over the paths (lean ABBA,
curl BAAB) so drift and noise on the machine hit every path alike;
a level stops early when its time cap is spent. Reading the output: latency
p50/p99 in ms and requests/s per path, pooled over the rounds; the ratios
chat2api/direct per client (p50 target <= 1.3x, throughput target >= 0.85x); CPU ms per
request of the load client, the simulator and chat2api (its PoW workers
included). The simulator's share should be the same for both paths, and the
client's comparable: otherwise the ratio is not measuring chat2api alone.
Every answer is checked (direct: ends with ``[DONE]``; chat2api: equals the
simulator's reply for the prompt); failures are counted, never timed.
No absolute time is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import psutil

from _common import (
    REQUEST_ERRORS,
    BenchError,
    ProcessWatch,
    machine_line,
    ms,
    new_session,
    percentile,
    running_servers,
    table,
)
from _lean import HTTP, CurlHTTP, LeanDirect, LeanOpenAI, fetch_profile
from chat2api.sim import reply_text

# Requests per path and level: a few seconds of each, so that a level's p50
# is not set by one noisy second of the machine.
LEVELS: tuple[tuple[int, int], ...] = ((1, 800), (16, 3200), (64, 4800))
REPLY_WORDS = 30  # the simulator's default reply length
P50_TARGET = 1.3
THROUGHPUT_TARGET = 0.85

Call = Callable[[int], Awaitable[float]]


@dataclass
class PathStats:
    """Everything measured for one path at one concurrency level."""

    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    errors: int = 0
    first_error: str = ""
    client_cpu: float = 0.0
    sim_cpu: float = 0.0
    api_cpu: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies)

    def per_request_ms(self, cpu: float) -> str:
        return f"{cpu / self.requests * 1000:.2f}" if self.requests else "-"


async def run_round(
    call: Call, concurrency: int, count: int, seconds: float, stats: PathStats
) -> None:
    """``count`` calls by ``concurrency`` workers, stopping early after ``seconds``."""
    issued = 0
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> None:
        nonlocal issued
        while issued < count and time.perf_counter() < deadline:
            index = issued
            issued += 1
            try:
                stats.latencies.append(await call(index))
            except REQUEST_ERRORS as exc:
                stats.errors += 1
                stats.first_error = stats.first_error or f"{type(exc).__name__}: {exc}"

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    stats.elapsed += time.perf_counter() - started


def prompt(level: int, index: int) -> str:
    return f"overhead benchmark, concurrency {level}, request {index}"


PATHS = ("direct", "chat2api", "curl-direct", "curl-chat2api")
ORDER = ("direct", "chat2api", "curl-chat2api", "curl-direct")
ORDER += tuple(reversed(ORDER))


async def bench(args: argparse.Namespace) -> None:
    print(machine_line())
    print(f"era {args.era}, upstream encoding {args.encoding}, workers {args.workers}")
    me = psutil.Process()
    names = PATHS if args.curl else PATHS[:2]
    order = [p for p in ORDER if p in names]
    env = {"UPSTREAM_PROTOCOL": args.era, "UPSTREAM_ENCODING": args.encoding}
    serve_args = ["--workers", args.workers] if args.workers != "1" else []
    with running_servers(env=env, args=serve_args) as servers:
        sim, api = ProcessWatch(servers.sim), ProcessWatch(servers.api)
        max_clients = max(c for c, _ in LEVELS) * 2
        lean_sim, lean_api = HTTP(servers.sim_url), HTTP(servers.api_url)
        async with (
            new_session(max_clients) as direct_session,
            new_session(max_clients) as api_session,
        ):
            profile = await fetch_profile(lean_sim)
            clients: dict[str, LeanDirect | LeanOpenAI] = {
                "direct": LeanDirect(
                    lean_sim, servers.token, profile, era=args.era, encoding=args.encoding
                ),
                "chat2api": LeanOpenAI(lean_api, servers.token),
                "curl-direct": LeanDirect(
                    CurlHTTP(direct_session, servers.sim_url),
                    servers.token,
                    profile,
                    era=args.era,
                    encoding=args.encoding,
                ),
                "curl-chat2api": LeanOpenAI(CurlHTTP(api_session, servers.api_url), servers.token),
            }

            def make_call(name: str, level: int) -> Call:
                client = clients[name]

                async def call(i: int) -> float:
                    text = prompt(level, i)
                    elapsed, content = await client.complete(text)
                    if content != reply_text(text, REPLY_WORDS):
                        raise BenchError(f"wrong {name} answer for {text!r}: {content[:80]!r}")
                    return elapsed

                return call

            results: list[tuple[int, dict[str, PathStats]]] = []
            for concurrency, count in LEVELS:
                count = int(count * args.scale)
                warm = PathStats()
                for name in names:  # connections opened, code paths warm
                    await run_round(make_call(name, -1), concurrency, concurrency * 2, 10, warm)
                paths = {name: PathStats() for name in names}
                per_round = max(1, len(names) * count // args.rounds)  # each path gets `count`
                seconds = args.level_seconds / args.rounds
                for r in range(args.rounds):
                    name = order[r % len(order)]
                    stats = paths[name]
                    before = (me.cpu_times(), sim.cpu_seconds(), api.cpu_seconds())
                    call = make_call(name, concurrency)
                    await run_round(call, concurrency, per_round, seconds, stats)
                    after = me.cpu_times()
                    stats.client_cpu += (after.user + after.system) - (
                        before[0].user + before[0].system
                    )
                    stats.sim_cpu += sim.cpu_seconds() - before[1]
                    stats.api_cpu += api.cpu_seconds() - before[2]
                results.append((concurrency, paths))
                print(f"  concurrency {concurrency}: done", flush=True)
        await lean_sim.close()
        await lean_api.close()
    report(results)


def report(results: list[tuple[int, dict[str, PathStats]]]) -> None:
    """The table of every path and level, then the ratios per client."""
    rows: list[list[str]] = []
    for concurrency, paths in results:
        for name, s in paths.items():
            rows.append(
                [
                    f"c={concurrency} {name}",
                    str(s.requests),
                    str(s.errors),
                    ms(percentile(s.latencies, 50)),
                    ms(percentile(s.latencies, 99)),
                    f"{s.requests / s.elapsed:.0f}" if s.elapsed else "-",
                    s.per_request_ms(s.client_cpu),
                    s.per_request_ms(s.sim_cpu),
                    s.per_request_ms(s.api_cpu) if name.endswith("chat2api") else "-",
                ]
            )
    print()
    headers = ["path", "requests", "errors", "p50 ms", "p99 ms", "req/s"]
    headers += ["client cpu ms/req", "sim cpu ms/req", "chat2api cpu ms/req"]
    print(table(headers, rows))
    for client, direct, api in (
        ("lean client", "direct", "chat2api"),
        ("curl_cffi client", "curl-direct", "curl-chat2api"),
    ):
        print(f"\nratios chat2api / direct, {client} (same run, interleaved rounds):")
        for concurrency, paths in results:
            if direct not in paths or api not in paths:
                continue
            d, c = paths[direct], paths[api]
            if not (d.requests and c.requests):
                continue
            p50 = percentile(c.latencies, 50) / percentile(d.latencies, 50)
            p99 = percentile(c.latencies, 99) / percentile(d.latencies, 99)
            rate = (c.requests / c.elapsed) / (d.requests / d.elapsed)
            verdict_p50 = "ok" if p50 <= P50_TARGET else "MISSED"
            verdict_rate = "ok" if rate >= THROUGHPUT_TARGET else "MISSED"
            print(
                f"  c={concurrency:<3} p50 {p50:.2f}x (target <= {P50_TARGET}x: {verdict_p50}), "
                f"p99 {p99:.2f}x, throughput {rate:.2f}x "
                f"(target >= {THROUGHPUT_TARGET}x: {verdict_rate}), "
                f"chat2api cpu {c.per_request_ms(c.api_cpu)} ms/req"
            )
    for concurrency, paths in results:
        for name, s in paths.items():
            if s.errors:
                print(f"  c={concurrency} {name}: {s.errors} errors, first: {s.first_error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=16, help="ABBA rounds per level, both paths")
    parser.add_argument("--level-seconds", type=float, default=40.0, help="time cap per level")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    parser.add_argument("--era", choices=("e2", "e3"), default="e3", help="upstream calls")
    parser.add_argument("--encoding", choices=("v1", "legacy"), default="v1")
    parser.add_argument("--workers", default="1", help="chat2api serve --workers")
    parser.add_argument(
        "--curl",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also the curl_cffi client (second line)",
    )
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
