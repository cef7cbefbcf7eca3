"""Overhead of chat2api on non-stream completions: ``python bench/overhead.py`` (~1 min).

Starts the simulator and one chat2api process (subprocesses, loopback, ephemeral
ports) and, at concurrency 1, 16 and 64, sends the same load two ways:

* direct: a minimal client makes chat2api's upstream calls itself (E3:
  sentinel prepare, FNV proof of work, finalize, conduit prepare,
  f/conversation; E2: chat-requirements, SHA3 proof, conversation; read to
  ``[DONE]``);
* chat2api: ``POST /v1/chat/completions`` (``stream: false``) to chat2api, which
  makes those calls for it.

Each level has a warm-up, then rounds in ABBA order (direct, chat2api,
chat2api, direct, …) so drift and noise on the machine hit both paths alike;
a level stops early when its time cap is spent. Reading the output: latency
p50/p99 in ms and requests/s per path, pooled over the rounds; the ratios
chat2api/direct (p50 target <= 1.5x, throughput target >= 0.6x); CPU ms per
request of the load client, the simulator and chat2api (its PoW workers
included). The simulator's share should be the same for both paths, and the
client's comparable: otherwise the ratio is not measuring chat2api alone.
Every answer is checked (direct: ends with ``[DONE]``; chat2api: equals the
simulator's reply for the prompt); failures are counted, never timed.
No absolute time is asserted.

``--era e3`` (the default) benchmarks today's send path against a simulator
that refuses E2's, ``--era e2`` the older one, ``--era both`` runs the two
one after the other and adds the cost of E3 over E2 (p50 ratios, per path
and level).
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
    DirectClient,
    OpenAIClient,
    ProcessWatch,
    fetch_profile,
    machine_line,
    ms,
    new_session,
    percentile,
    running_servers,
    table,
)
from chat2api.sim import reply_text

# Requests per path and level: a few seconds of each, so that a level's p50
# is not set by one noisy second of the machine.
LEVELS: tuple[tuple[int, int], ...] = ((1, 800), (16, 3200), (64, 4800))
REPLY_WORDS = 30  # the simulator's default reply length
P50_TARGET = 1.5
THROUGHPUT_TARGET = 0.6

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


Results = list[tuple[int, "PathStats", "PathStats"]]


async def bench(args: argparse.Namespace) -> None:
    print(machine_line())
    eras = ["e2", "e3"] if args.era == "both" else [args.era]
    by_era = {}
    for era in eras:
        print(f"era {era}:", flush=True)
        by_era[era] = await bench_era(args, era)
        report(by_era[era])
    if len(by_era) == 2:
        print("\ncost of E3 over E2 (p50 latency, E3 / E2, separate runs):")
        for (level, d2, c2), (_, d3, c3) in zip(by_era["e2"], by_era["e3"], strict=True):
            direct = percentile(d3.latencies, 50) / percentile(d2.latencies, 50)
            api = percentile(c3.latencies, 50) / percentile(c2.latencies, 50)
            print(f"  c={level:<3} direct {direct:.2f}x, chat2api {api:.2f}x")


async def bench_era(args: argparse.Namespace, era: str) -> Results:
    me = psutil.Process()
    with running_servers(era=era) as servers:
        sim, api = ProcessWatch(servers.sim), ProcessWatch(servers.api)
        max_clients = max(c for c, _ in LEVELS) * 2
        async with (
            new_session(max_clients) as direct_session,
            new_session(max_clients) as api_session,
        ):
            profile = await fetch_profile(direct_session, servers.sim_url)
            direct = DirectClient(direct_session, servers.sim_url, servers.token, profile, era)
            openai = OpenAIClient(api_session, servers.api_url, servers.token)

            def direct_call(level: int) -> Call:
                async def call(i: int) -> float:
                    text = prompt(level, i)
                    elapsed, content = await direct.complete(text)
                    if content != reply_text(text, REPLY_WORDS):
                        raise BenchError(f"wrong direct answer for {text!r}: {content[:80]!r}")
                    return elapsed

                return call

            def api_call(level: int) -> Call:
                async def call(i: int) -> float:
                    text = prompt(level, i)
                    elapsed, content = await openai.complete(text)
                    if content != reply_text(text, REPLY_WORDS):
                        raise BenchError(f"wrong answer for {text!r}: {content[:80]!r}")
                    return elapsed

                return call

            results: Results = []
            for concurrency, count in LEVELS:
                count = int(count * args.scale)
                warm = PathStats()
                for make in (direct_call, api_call):  # connections opened, code paths warm
                    await run_round(make(-1), concurrency, concurrency * 2, 10, warm)
                paths = {"direct": PathStats(), "chat2api": PathStats()}
                calls = {"direct": direct_call(concurrency), "chat2api": api_call(concurrency)}
                per_round = max(1, 2 * count // args.rounds)  # each path gets `count`
                seconds = args.level_seconds / args.rounds
                order = ["direct", "chat2api", "chat2api", "direct"]
                for r in range(args.rounds):
                    name = order[r % 4]
                    stats = paths[name]
                    before = (me.cpu_times(), sim.cpu_seconds(), api.cpu_seconds())
                    await run_round(calls[name], concurrency, per_round, seconds, stats)
                    after = me.cpu_times()
                    stats.client_cpu += (after.user + after.system) - (
                        before[0].user + before[0].system
                    )
                    stats.sim_cpu += sim.cpu_seconds() - before[1]
                    stats.api_cpu += api.cpu_seconds() - before[2]
                results.append((concurrency, paths["direct"], paths["chat2api"]))
                print(f"  concurrency {concurrency}: done", flush=True)
    return results


def report(results: Results) -> None:
    rows: list[list[str]] = []
    for concurrency, d, c in results:
        for name, s in (("direct", d), ("chat2api", c)):
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
                    s.per_request_ms(s.api_cpu) if name == "chat2api" else "-",
                ]
            )
    print()
    headers = ["path", "requests", "errors", "p50 ms", "p99 ms", "req/s"]
    headers += ["client cpu ms/req", "sim cpu ms/req", "chat2api cpu ms/req"]
    print(table(headers, rows))
    print("\nratios chat2api / direct (same run, interleaved rounds):")
    for concurrency, d, c in results:
        p50 = percentile(c.latencies, 50) / percentile(d.latencies, 50)
        p99 = percentile(c.latencies, 99) / percentile(d.latencies, 99)
        rate = (c.requests / c.elapsed) / (d.requests / d.elapsed)
        verdict_p50 = "ok" if p50 <= P50_TARGET else "MISSED"
        verdict_rate = "ok" if rate >= THROUGHPUT_TARGET else "MISSED"
        print(
            f"  c={concurrency:<3} p50 {p50:.2f}x (target <= {P50_TARGET}x: {verdict_p50}), "
            f"p99 {p99:.2f}x, throughput {rate:.2f}x "
            f"(target >= {THROUGHPUT_TARGET}x: {verdict_rate})"
        )
    for concurrency, d, c in results:
        for name, s in (("direct", d), ("chat2api", c)):
            if s.errors:
                print(f"  c={concurrency} {name}: {s.errors} errors, first: {s.first_error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=16, help="ABBA rounds per level, both paths")
    parser.add_argument("--level-seconds", type=float, default=40.0, help="time cap per level")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    parser.add_argument(
        "--era", choices=["e3", "e2", "both"], default="e3", help="the send path benchmarked"
    )
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
