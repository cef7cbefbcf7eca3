"""This checkout against another revision, side by side: ``python bench/ab.py REV`` (~1 min).

Checks ``REV`` out into a temporary git worktree and starts one simulator and
two chat2api processes on it (subprocesses, loopback, ephemeral ports): "this"
serves this checkout's code, "REV" the other's, through ``PYTHONPATH`` (both
run in this environment, with its dependencies). Rounds of non-stream
completions at one concurrency go to each server in turn, the order swapped
every round, so that machine noise hits both alike. Each round is checked
(every answer equals the simulator's reply for its prompt) and measured:
the server's CPU milliseconds per request (its worker processes included)
and its requests/s. ``--env NAME=VALUE`` adds to the environment of this
checkout's server only, to compare a setting on the same code (``REV`` HEAD).
``--stream`` makes every request a stream of ``--words`` chunks ``--delay-ms``
apart (as ``streams.py``, default 50 and 20): the CPU per stream then counts
the per-chunk work (decode, re-encode, write) besides the opening; each
stream's text is checked whole and in order.

Reading the output: one line per round and server, then the medians and
their ratio this/REV, and the median of the rounds' own ratios (each round
runs both servers back to back, so its ratio shares that round's load). A
CPU ratio below 1 means this checkout does the same work with less CPU.
Changes smaller than the spread of the rounds are noise.
No absolute time is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from _common import (
    BenchError,
    OpenAIClient,
    ProcessWatch,
    machine_line,
    new_session,
    raise_fd_limit,
    show_logs,
    start_api,
    start_sim,
    stop_all,
)
from chat2api.sim import mint_access_token, reply_text

REPLY_WORDS = 30  # the simulator's default reply length
HERE = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """``revision`` checked out in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="chat2api-ab-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(HERE), "worktree", "add", "--detach", "-q", str(path), revision],
            check=True,
        )
        try:
            yield path
        finally:
            subprocess.run(
                ["git", "-C", str(HERE), "worktree", "remove", "--force", str(path)],
                check=False,
            )


@contextlib.contextmanager
def two_servers(
    other_src: Path, workdir: Path, this_env: dict[str, str] | None = None
) -> Iterator[dict[str, tuple[str, psutil.Process]]]:
    """The simulator and two chat2api processes: this checkout's and ``other_src``'s.

    ``this_env`` is added to this checkout's environment only (a setting
    compared against the same code: ``python bench/ab.py HEAD --env K=V``).
    """
    raise_fd_limit()
    started: list[subprocess.Popen[bytes]] = []
    try:
        sim_url = start_sim(workdir, started)
        servers: dict[str, tuple[str, psutil.Process]] = {}
        for name, src in (("this", HERE / "src"), ("other", other_src)):
            env = {"PYTHONPATH": str(src)}
            if name == "this" and this_env:
                env |= this_env
            url, proc = start_api(workdir, sim_url, started, name=name, env=env)
            servers[name] = (url, psutil.Process(proc.pid))
        yield servers
    except BaseException:
        show_logs(workdir)
        raise
    finally:
        stop_all(started)


async def ask_checked(client: OpenAIClient, args: argparse.Namespace, text: str) -> None:
    """One completion (a stream of ``args.words`` chunks with ``args.stream``), checked
    against the simulator's reply for ``text``."""
    if args.stream:
        result = await client.stream(
            f"{text} #sim:words={args.words} #sim:delay_ms={args.delay_ms}"
        )
        content, expected = result.text, reply_text(text, args.words)
        if not result.done:
            raise BenchError(f"stream for {text!r} ended without [DONE]")
    else:
        _, content = await client.complete(text)
        expected = reply_text(text, REPLY_WORDS)
    if content != expected:
        raise BenchError(f"wrong answer for {text!r}: {content[:80]!r}")


async def one_round(
    url: str, proc: psutil.Process, args: argparse.Namespace, tag: str
) -> tuple[float, float]:
    """CPU ms per request and requests/s of ``args.requests`` completions."""
    token = mint_access_token()
    watch = ProcessWatch(proc)
    async with new_session(args.concurrency + 8) as session:
        client = OpenAIClient(session, url, token)

        async def ask(text: str) -> None:
            await ask_checked(client, args, text)

        await asyncio.gather(*(ask(f"ab warm-up {tag} {i}") for i in range(args.concurrency)))
        gate = asyncio.Semaphore(args.concurrency)

        async def bounded(i: int) -> None:
            async with gate:
                await ask(f"ab {tag} {i}")

        cpu = watch.cpu_seconds()
        started = time.perf_counter()
        async with asyncio.timeout(args.timeout):
            await asyncio.gather(*(bounded(i) for i in range(args.requests)))
        elapsed = time.perf_counter() - started
        cpu = watch.cpu_seconds() - cpu
    return 1000 * cpu / args.requests, args.requests / elapsed


async def bench(args: argparse.Namespace) -> None:
    print(machine_line())
    with (
        worktree(args.revision) as tree,
        tempfile.TemporaryDirectory(prefix="chat2api-ab-run-") as tmp,
        two_servers(tree / "src", Path(tmp), dict(args.env)) as servers,
    ):
        cpu: dict[str, list[float]] = {name: [] for name in servers}
        rate: dict[str, list[float]] = {name: [] for name in servers}
        names = list(servers)
        for r in range(args.rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                url, proc = servers[name]
                ms, rps = await one_round(url, proc, args, f"{r}-{name}")
                cpu[name].append(ms)
                rate[name].append(rps)
                label = "this" if name == "this" else args.revision
                print(f"  round {r + 1} {label:>10}: {ms:.3f} ms CPU/request, {rps:.0f} req/s")
    # Each round's two servers ran back to back, so their ratio shares that
    # round's machine load: the median of these is steadier than the ratio of
    # the medians (an A/A run: 1.02 against 1.13).
    pairs = sorted(t / o for t, o in zip(cpu["this"], cpu["other"], strict=True))
    this_cpu, other_cpu = statistics.median(cpu["this"]), statistics.median(cpu["other"])
    this_rate, other_rate = statistics.median(rate["this"]), statistics.median(rate["other"])
    what = f"streams of {args.words} chunks" if args.stream else "requests"
    print(f"\nconcurrency {args.concurrency}, {args.requests} {what} a round, medians:")
    print(f"  this: {this_cpu:.3f} ms CPU/request, {this_rate:.0f} req/s")
    print(f"  {args.revision}: {other_cpu:.3f} ms CPU/request, {other_rate:.0f} req/s")
    print(
        f"  ratio this/{args.revision}: CPU {this_cpu / other_cpu:.3f}, "
        f"throughput {this_rate / other_rate:.3f}"
    )
    print(
        f"  CPU ratio round by round: median {statistics.median(pairs):.3f} "
        f"(from {pairs[0]:.3f} to {pairs[-1]:.3f})"
    )


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="git revision to compare with (e.g. HEAD~3)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000, help="completions per round")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per server")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per round at most")
    parser.add_argument("--stream", action="store_true", help="streamed completions")
    parser.add_argument("--words", type=int, default=50, help="chunks per stream (--stream)")
    parser.add_argument(
        "--delay-ms", type=int, default=20, help="ms between a stream's chunks (--stream)"
    )
    parser.add_argument(
        "--env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for this checkout's server only (repeatable)",
    )
    try:
        asyncio.run(bench(parser.parse_args()))
    except subprocess.CalledProcessError as exc:
        sys.exit(f"git could not check the revision out: {exc}")


if __name__ == "__main__":
    main()
