"""1,000 concurrent streams through one chat2api process: ``python bench/streams.py`` (~1 min).

Starts the simulator and one chat2api process (subprocesses, loopback,
ephemeral ports). Each stream asks for 50 one-word chunks 20 ms apart
(``#sim:words=50 #sim:delay_ms=20``), so the streams really overlap. Rounds
of N concurrent streams run in ABBA order (direct, chat2api, chat2api,
direct) so machine noise hits both paths alike:

* direct: the minimal client does the sentinel calls, the proof of work and
  the conversation itself (``--era e3``, the default: prepare, FNV proof,
  finalize, conduit prepare, f/conversation, against a simulator refusing
  E2's send; ``--era e2``: chat-requirements, SHA3 proof, conversation);
  TTFB is from the first of those calls to the first answer text;
* chat2api: ``stream: true`` completions; TTFB is from sending the request
  to the first content chunk.

Every stream is checked: its text reassembled from the chunks equals
``reply_text(prompt, 50)`` (so complete and in order) and it ends with
``[DONE]``. Reading the output: TTFB and whole-stream p50/p99 in ms, the
wall time of a round, CPU seconds per 1,000 streams of the client, the
simulator and chat2api; then chat2api's RSS warm and idle before, the peak
while streaming (sampled every 50 ms; target <= 120 MB) and a few seconds
after (should be within 20% of idle). If the client's CPU use is close to
one full core for the round, the client, not chat2api, set the pace.
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
    DirectClient,
    OpenAIClient,
    ProcessWatch,
    RssSampler,
    Servers,
    StreamResult,
    fetch_profile,
    machine_line,
    mib,
    ms,
    new_session,
    percentile,
    running_servers,
    table,
)
from chat2api.sentinel import BrowserProfile
from chat2api.sim import reply_text

WORDS = 50
DELAY_MS = 20
PEAK_TARGET = 120 * 10**6  # the 120 MB, i.e. 114.4 MiB
SETTLE_TOLERANCE = 0.20

StreamCall = Callable[[str], Awaitable[StreamResult]]


@dataclass
class Round:
    """One round of N concurrent streams on one path."""

    path: str
    results: list[StreamResult] = field(default_factory=list)
    failures: int = 0
    first_failure: str = ""
    wall: float = 0.0
    client_cpu: float = 0.0
    sim_cpu: float = 0.0
    api_cpu: float = 0.0
    peak_rss: int = 0
    peak_private: int = 0


def prompt(tag: str, index: int) -> tuple[str, str]:
    """The prompt sent (with directives) and the reply the simulator must stream."""
    text = f"streams benchmark {tag} {index}"
    return f"{text} #sim:words={WORDS} #sim:delay_ms={DELAY_MS}", reply_text(text, WORDS)


async def run_streams(call: StreamCall, count: int, tag: str, within: float, out: Round) -> None:
    """``count`` streams started together; each result checked against its reply."""

    async def one(index: int) -> None:
        sent, expected = prompt(tag, index)
        try:
            result = await call(sent)
        except REQUEST_ERRORS as exc:
            out.failures += 1
            out.first_failure = out.first_failure or f"{type(exc).__name__}: {exc}"
            return
        if result.text != expected or not result.done:
            out.failures += 1
            out.first_failure = out.first_failure or (
                f"stream {index}: done={result.done}, got {result.text[:60]!r}…, "
                f"want {expected[:60]!r}…"
            )
            return
        out.results.append(result)

    started = time.perf_counter()
    async with asyncio.timeout(within):
        await asyncio.gather(*(one(i) for i in range(count)))
    out.wall = time.perf_counter() - started


def settled_rss(watch: ProcessWatch, seconds: float) -> int:
    """The median of a few RSS samples over ``seconds``."""
    samples: list[int] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        samples.append(watch.rss())
        time.sleep(0.1)
    return sorted(samples)[len(samples) // 2]


async def run_round(
    path: str, count: int, servers: Servers, profile: BrowserProfile, within: float, out: Round
) -> None:
    """``count`` streams on a fresh client session, closed at the end with its connections."""
    async with new_session(count + 64) as session:
        call: StreamCall
        if path == "direct":
            call = DirectClient(
                session, servers.sim_url, servers.token, profile, servers.era
            ).stream
        else:
            call = OpenAIClient(session, servers.api_url, servers.token).stream
        await run_streams(call, count, f"{out.path}-{path}", within, out)


async def bench(args: argparse.Namespace) -> None:
    """Warm up, measure idle memory, run the rounds, then print the report."""
    print(machine_line())
    me = psutil.Process()
    with running_servers(era=args.era) as servers:
        sim, api = ProcessWatch(servers.sim), ProcessWatch(servers.api)
        async with new_session(4) as session:
            profile = await fetch_profile(session, servers.sim_url)

        fresh_rss = api.rss()  # started, no request served yet
        warm = Round("warm-up")
        for path in ("direct", "chat2api"):
            await run_round(path, args.warmup, servers, profile, args.timeout, warm)
        if warm.failures:
            raise SystemExit(f"warm-up failed: {warm.first_failure}")
        await asyncio.sleep(1.0)
        idle_rss = settled_rss(api, 1.0)
        idle_shared = api.shared()
        idle_children = api.children_rss()

        rounds: list[Round] = []
        after_rss = 0
        after_connections = (0, 0)
        sim_port = int(servers.sim_url.rsplit(":", 1)[1])
        order = ["direct", "chat2api", "chat2api", "direct"]
        for r in range(args.rounds):
            out = Round(order[r % 4])
            before = (me.cpu_times(), sim.cpu_seconds(), api.cpu_seconds())
            with RssSampler(servers.api) as sampler:
                await run_round(out.path, args.streams, servers, profile, args.timeout, out)
            after = me.cpu_times()
            out.client_cpu = (after.user + after.system) - (before[0].user + before[0].system)
            out.sim_cpu = sim.cpu_seconds() - before[1]
            out.api_cpu = api.cpu_seconds() - before[2]
            out.peak_rss = sampler.peak
            out.peak_private = sampler.peak_private
            rounds.append(out)
            print(f"  round {r + 1} ({out.path}): {out.wall:.2f}s", flush=True)
            if out.path == "chat2api":
                await asyncio.sleep(args.settle)
                after_rss = settled_rss(api, 1.0)
                after_connections = api.connections(sim_port)

    memory = (fresh_rss, idle_rss, idle_shared, idle_children, after_rss)
    report(args, rounds, memory, after_connections)


def report(
    args: argparse.Namespace,
    rounds: list[Round],
    memory: tuple[int, int, int, int, int],
    connections: tuple[int, int],
) -> None:
    """Print the table, the ratios and the memory figures."""
    fresh, idle_rss, idle_shared, idle_children, after = memory
    per_k = 1000 / args.streams
    rows: list[list[str]] = []
    for r, out in enumerate(rounds, 1):
        ttfb = [x.ttfb for x in out.results]
        total = [x.total for x in out.results]
        rows.append(
            [
                f"{r} {out.path}",
                f"{len(out.results)}/{args.streams}",
                ms(percentile(ttfb, 50)),
                ms(percentile(ttfb, 99)),
                ms(percentile(total, 50)),
                ms(percentile(total, 99)),
                f"{out.wall:.2f}",
                f"{out.client_cpu * per_k:.2f} ({out.client_cpu / out.wall:.0%})",
                f"{out.sim_cpu * per_k:.2f}",
                f"{out.api_cpu * per_k:.2f}" if out.path == "chat2api" else "-",
            ]
        )
    print(
        f"\n{args.streams} concurrent streams x {WORDS} chunks, {DELAY_MS} ms apart "
        f"(send path {args.era.upper()})"
    )
    headers = ["round/path", "ok", "ttfb p50", "ttfb p99", "total p50", "total p99", "wall s"]
    headers += ["client cpu s/1k (of wall)", "sim cpu s/1k", "chat2api cpu s/1k"]
    print(table(headers, rows))
    for r, out in enumerate(rounds, 1):
        if out.failures:
            print(f"  round {r} {out.path}: {out.failures} failed, first: {out.first_failure}")

    def pooled(path: str) -> list[StreamResult]:
        return [x for out in rounds if out.path == path for x in out.results]

    d, c = pooled("direct"), pooled("chat2api")
    if d and c:
        print("\nratios chat2api / direct, pooled over rounds:")
        for label, q in (("p50", 50), ("p99", 99)):
            d_ttfb = percentile([x.ttfb for x in d], q)
            c_ttfb = percentile([x.ttfb for x in c], q)
            d_total = percentile([x.total for x in d], q)
            c_total = percentile([x.total for x in c], q)
            print(
                f"  ttfb {label} {c_ttfb / d_ttfb:.2f}x ({ms(c_ttfb)} vs {ms(d_ttfb)} ms), "
                f"total {label} {c_total / d_total:.2f}x"
            )

    peak = max((out.peak_rss for out in rounds if out.path == "chat2api"), default=0)
    private = max((out.peak_private for out in rounds if out.path == "chat2api"), default=0)
    growth = after / idle_rss - 1 if idle_rss else float("nan")
    print("\nchat2api process memory (RSS of the main process):")
    print(f"  started, no request yet: {mib(fresh)} MiB")
    print(
        f"  warm idle before: {mib(idle_rss)} MiB (of it {mib(idle_shared)} file-backed: "
        f"shared libraries; worker processes: {mib(idle_children)})"
    )
    verdict = "ok" if peak <= PEAK_TARGET else "MISSED"
    print(
        f"  peak while streaming: {mib(peak)} MiB (target <= 120 MB = {mib(PEAK_TARGET)} MiB: "
        f"{verdict}); "
        f"the part not backed by files peaked at {mib(private)}"
    )
    verdict = "ok" if abs(growth) <= SETTLE_TOLERANCE else "MISSED"
    print(
        f"  {args.settle:g}-{args.settle + 1:g} s after: {mib(after)} MiB "
        f"({growth:+.0%} vs idle; within {SETTLE_TOLERANCE:.0%}: {verdict})"
    )
    print(
        f"  then still established: {connections[0]} upstream connections to the simulator, "
        f"{connections[1]} other (this client's were closed)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams per round")
    parser.add_argument("--era", choices=["e3", "e2"], default="e3", help="the send path")
    parser.add_argument("--rounds", type=int, default=4, help="rounds, ABBA order")
    parser.add_argument("--warmup", type=int, default=50, help="warm-up streams per path")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before RSS after")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds per round at most")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
