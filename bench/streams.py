"""1,000 concurrent streams through chat2api: ``python bench/streams.py`` (~2 min).

Starts the simulator and chat2api (subprocesses, loopback, ephemeral ports;
``--workers N`` for ``serve --workers N``). Each stream asks for 50 one-word
chunks 20 ms apart (``#sim:words=50 #sim:delay_ms=20``), so the streams
really overlap. Rounds of N concurrent streams alternate over the paths
(lean ABBA, curl BAAB) so machine noise hits them alike:

* direct: the lean client (``_lean.LeanDirect``: raw asyncio HTTP/1.1, one
  ``json.loads`` per event) makes chat2api's upstream calls itself, in the
  era (``--era``) and stream encoding (``--encoding``) chat2api is started
  with; TTFB is from the first sentinel call to the first answer text;
* chat2api: ``stream: true`` completions sent by the same lean client; TTFB
  is from sending the request to the first content chunk;
* curl-direct, curl-chat2api: the same through curl_cffi (Chrome
  impersonation), the second line (``--no-curl`` leaves them out).

Every stream is checked: its text reassembled from the chunks equals
``reply_text(prompt, 50)`` (so complete and in order) and it ends with
``[DONE]``. Reading the output: TTFB and whole-stream p50/p99 in ms, the
wall time of a round, CPU seconds per 1,000 streams of the client, the
simulator and chat2api (its whole process tree); the ratios per client;
then the memory of chat2api's whole process tree (sum of PSS, as a
container limit counts it) warm and idle before, the peak while streaming
(sampled every 100 ms; target <= 120 MB) and a few seconds after (should be
within 20% of idle). If the client's CPU use is close to one full core for
the round, the client, not chat2api, set the pace. No absolute time is
asserted.
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
    ProcessWatch,
    RssSampler,
    Servers,
    StreamResult,
    machine_line,
    mib,
    ms,
    new_session,
    percentile,
    running_servers,
    table,
)
from _lean import HTTP, CurlHTTP, LeanDirect, LeanOpenAI, fetch_profile
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
    peak_rss: int = 0  # of the whole tree (PSS)


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


PATHS = ("direct", "chat2api", "curl-direct", "curl-chat2api")
# Each path's rounds spread alike over the run: lean ABBA, then curl BAAB.
ORDER = ("direct", "chat2api", "curl-chat2api", "curl-direct")
ORDER += tuple(reversed(ORDER))


async def run_round(
    path: str,
    count: int,
    servers: Servers,
    profile: BrowserProfile,
    options: argparse.Namespace,
    out: Round,
) -> None:
    """``count`` streams on a fresh client, closed at the end with its connections."""
    call: StreamCall
    if path.startswith("curl-"):
        async with new_session(count + 64) as session:
            if path == "curl-direct":
                http: HTTP | CurlHTTP = CurlHTTP(session, servers.sim_url)
                call = LeanDirect(
                    http, servers.token, profile, era=options.era, encoding=options.encoding
                ).stream
            else:
                call = LeanOpenAI(CurlHTTP(session, servers.api_url), servers.token).stream
            await run_streams(call, count, f"{out.path}-{path}", options.timeout, out)
        return
    http = HTTP(servers.sim_url if path == "direct" else servers.api_url)
    try:
        if path == "direct":
            call = LeanDirect(
                http, servers.token, profile, era=options.era, encoding=options.encoding
            ).stream
        else:
            call = LeanOpenAI(http, servers.token).stream
        await run_streams(call, count, f"{out.path}-{path}", options.timeout, out)
    finally:
        await http.close()


def server_env(args: argparse.Namespace) -> dict[str, str]:
    """What ``serve`` is started with: the era and stream encoding the direct client uses."""
    return {"UPSTREAM_PROTOCOL": args.era, "UPSTREAM_ENCODING": args.encoding}


def server_args(args: argparse.Namespace) -> list[str]:
    return ["--workers", str(args.workers)] if args.workers != "1" else []


async def bench(args: argparse.Namespace) -> None:
    """Warm up, measure idle memory, run the rounds, then print the report."""
    print(machine_line())
    print(f"era {args.era}, upstream encoding {args.encoding}, workers {args.workers}")
    me = psutil.Process()
    paths = PATHS if args.curl else PATHS[:2]
    order = [p for p in ORDER if p in paths]
    with running_servers(env=server_env(args), args=server_args(args)) as servers:
        sim, api = ProcessWatch(servers.sim), ProcessWatch(servers.api)
        http = HTTP(servers.sim_url)
        profile = await fetch_profile(http)
        await http.close()

        fresh_tree = api.tree_memory()  # started, no request served yet
        warm = Round("warm-up")
        for path in paths:
            await run_round(path, args.warmup, servers, profile, args, warm)
        if warm.failures:
            raise SystemExit(f"warm-up failed: {warm.first_failure}")
        await asyncio.sleep(1.0)
        idle_tree = settled(api.tree_memory, 1.0)

        rounds: list[Round] = []
        after_tree = 0
        after_connections = (0, 0)
        sim_port = int(servers.sim_url.rsplit(":", 1)[1])
        for r in range(args.rounds):
            out = Round(order[r % len(order)])
            before = (me.cpu_times(), sim.cpu_seconds(), api.cpu_seconds())
            with RssSampler(servers.api) as sampler:
                await run_round(out.path, args.streams, servers, profile, args, out)
            after = me.cpu_times()
            out.client_cpu = (after.user + after.system) - (before[0].user + before[0].system)
            out.sim_cpu = sim.cpu_seconds() - before[1]
            out.api_cpu = api.cpu_seconds() - before[2]
            out.peak_rss = sampler.peak_tree
            rounds.append(out)
            print(f"  round {r + 1} ({out.path}): {out.wall:.2f}s", flush=True)
            if out.path.endswith("chat2api"):
                await asyncio.sleep(args.settle)
                after_tree = settled(api.tree_memory, 1.0)
                after_connections = api.connections(sim_port)

    report(args, rounds, (fresh_tree, idle_tree, after_tree), after_connections)


def settled(sample: Callable[[], int], seconds: float) -> int:
    """The median of a few samples over ``seconds``."""
    samples: list[int] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        samples.append(sample())
        time.sleep(0.1)
    return sorted(samples)[len(samples) // 2]


def report(
    args: argparse.Namespace,
    rounds: list[Round],
    memory: tuple[int, int, int],
    connections: tuple[int, int],
) -> None:
    """Print the table, the ratios and the memory figures."""
    fresh, idle, after = memory
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
                f"{out.api_cpu * per_k:.2f}" if out.path.endswith("chat2api") else "-",
            ]
        )
    print(f"\n{args.streams} concurrent streams x {WORDS} chunks, {DELAY_MS} ms apart")
    headers = ["round/path", "ok", "ttfb p50", "ttfb p99", "total p50", "total p99", "wall s"]
    headers += ["client cpu s/1k (of wall)", "sim cpu s/1k", "chat2api cpu s/1k"]
    print(table(headers, rows))
    for r, out in enumerate(rounds, 1):
        if out.failures:
            print(f"  round {r} {out.path}: {out.failures} failed, first: {out.first_failure}")

    def pooled(path: str) -> list[StreamResult]:
        return [x for out in rounds if out.path == path for x in out.results]

    def cpu(path: str) -> float:
        done = [out for out in rounds if out.path == path]
        return sum(o.api_cpu for o in done) / max(1, sum(len(o.results) for o in done)) * 1000

    for client, direct_path, api_path in (
        ("lean client", "direct", "chat2api"),
        ("curl_cffi client", "curl-direct", "curl-chat2api"),
    ):
        d, c = pooled(direct_path), pooled(api_path)
        if not (d and c):
            continue
        print(f"\nratios chat2api / direct, {client}, pooled over rounds:")
        for label, q in (("p50", 50), ("p99", 99)):
            d_ttfb = percentile([x.ttfb for x in d], q)
            c_ttfb = percentile([x.ttfb for x in c], q)
            d_total = percentile([x.total for x in d], q)
            c_total = percentile([x.total for x in c], q)
            print(
                f"  ttfb {label} {c_ttfb / d_ttfb:.2f}x ({ms(c_ttfb)} vs {ms(d_ttfb)} ms), "
                f"total {label} {c_total / d_total:.2f}x ({ms(c_total)} vs {ms(d_total)} ms)"
            )
        print(f"  chat2api cpu per 1,000 streams: {cpu(api_path):.2f} s")

    peak = max((out.peak_rss for out in rounds if out.path.endswith("chat2api")), default=0)
    growth = after / idle - 1 if idle else float("nan")
    print("\nchat2api process tree memory (sum of PSS: server, workers, token and PoW workers):")
    print(f"  started, no request yet: {mib(fresh)} MiB; warm idle before: {mib(idle)} MiB")
    verdict = "ok" if peak <= PEAK_TARGET else "MISSED"
    print(
        f"  peak while streaming: {mib(peak)} MiB (target <= 120 MB = {mib(PEAK_TARGET)} MiB: "
        f"{verdict})"
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
    parser.add_argument("--rounds", type=int, default=8, help="rounds, alternating paths")
    parser.add_argument("--era", choices=("e2", "e3"), default="e3", help="upstream calls")
    parser.add_argument("--encoding", choices=("v1", "legacy"), default="v1")
    parser.add_argument("--workers", default="1", help="chat2api serve --workers")
    parser.add_argument(
        "--curl",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also the curl_cffi client (second line)",
    )
    parser.add_argument("--warmup", type=int, default=50, help="warm-up streams per path")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before RSS after")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds per round at most")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
