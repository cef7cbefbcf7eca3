"""Instructions per answer, counted by valgrind: ``python bench/instructions.py [REV ...]``.

CPU time on a shared 2-core machine moves by ±5–15% from run to run, more
than most single changes save. An instruction count does not: the same
server code answering the same requests executes the same instructions
whatever else the machine runs (two runs of one build agree within 0.3%).
So this is the judge of a change to the server's own work.

Each checkout (this one, then each ``REV``, checked out in a temporary git
worktree as ``ab.py`` does) runs as a ``chat2api serve`` under ``valgrind
--tool=callgrind`` with counting off, against one ``chat2api sim`` (both on
loopback). After ``--warm`` requests, counting is switched on
(``callgrind_control``), ``--requests`` completions are made (or streams of
``--words`` chunks with ``--stream``), and the total is divided by their
number. Prints instructions (Ir) per answer for each checkout and each
one's ratio to the first. ``--keep DIR`` keeps the callgrind files for
``callgrind_annotate``.

What it does not count: the kernel (system calls: compare with
``strace -c``), the token-counting worker and proof-of-work pool (other
processes), cache misses and waiting. A change that trades instructions
for system calls shows here as a gain it may not be; ``ab.py`` remains the
judge of time. Under valgrind the server runs ~25× slower, so the default
concurrency is 1 for completions (each request's path the same every run)
and 8 for streams (whose chunks are 20 ms apart, far slower than the
server's per-chunk work even under valgrind).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from _common import (
    BenchError,
    OpenAIClient,
    _wait_ready,
    free_port,
    machine_line,
    new_session,
    raise_fd_limit,
    server_env,
    show_logs,
    start_sim,
    stop_all,
)
from ab import HERE, ask_checked, worktree
from chat2api.sim import mint_access_token


async def _load(url: str, args: argparse.Namespace, count: int, tag: str) -> None:
    """``count`` answers at ``args.concurrency``, each checked against the simulator's reply."""
    token = mint_access_token()
    async with new_session(args.concurrency + 8) as session:
        client = OpenAIClient(session, url, token)
        gate = asyncio.Semaphore(args.concurrency)

        async def one(i: int) -> None:
            async with gate:
                await ask_checked(client, args, f"ir {tag} {i}")

        await asyncio.gather(*(one(i) for i in range(count)))


def _control(pid: int, *flags: str) -> None:
    subprocess.run(["callgrind_control", *flags, str(pid)], check=True, capture_output=True)


def _total(out: Path) -> int:
    """The instructions in the dump callgrind wrote (``out.1``; ``out`` itself is the exit's)."""
    total = 0
    for path in sorted(out.parent.glob(out.name + ".*")):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(("totals:", "summary:")):
                total = max(total, int(line.split()[1]))
    return total


def measure(src: Path, sim_url: str, workdir: Path, args: argparse.Namespace, name: str) -> int:
    """Instructions per answer of a server running the code in ``src``."""
    started: list[subprocess.Popen[bytes]] = []
    out = workdir / f"callgrind.{name}"
    log = workdir / f"{name}.log"
    port = free_port()
    env = server_env(workdir, sim_url, name, {"PYTHONPATH": str(src)})
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-m",
        "chat2api",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    try:
        with log.open("wb") as sink:
            server = subprocess.Popen(
                command, stdout=sink, stderr=subprocess.STDOUT, cwd=workdir, env=env
            )
        started.append(server)
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url + "/v1/models", server, log, 600.0)
        asyncio.run(_load(url, args, args.warm, f"warm-{name}"))
        _control(server.pid, "--instr=on")
        began = time.perf_counter()
        asyncio.run(_load(url, args, args.requests, name))
        _control(server.pid, "--dump")
        _control(server.pid, "--instr=off")
        total = _total(out)  # the dump's file; the one written at exit is not wanted
        print(f"  {name}: {args.requests} answers, {time.perf_counter() - began:.0f} s")
    finally:
        stop_all(started)
    if total <= 0:
        raise BenchError(f"callgrind wrote no totals for {name} (log: {log})")
    if args.keep:
        for path in out.parent.glob(out.name + "*"):
            shutil.copy(path, Path(args.keep) / path.name)
    return total // args.requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revisions", nargs="*", help="git revisions to compare with")
    parser.add_argument("--requests", type=int, default=100, help="answers counted")
    parser.add_argument("--warm", type=int, default=30, help="answers before counting")
    parser.add_argument("--concurrency", type=int, help="default: 1, or 8 with --stream")
    parser.add_argument("--stream", action="store_true", help="streamed completions")
    parser.add_argument("--words", type=int, default=50, help="chunks per stream (--stream)")
    parser.add_argument("--delay-ms", type=int, default=20, help="ms between chunks (--stream)")
    parser.add_argument("--keep", metavar="DIR", help="copy the callgrind files into DIR")
    args = parser.parse_args()
    if args.concurrency is None:
        args.concurrency = 8 if args.stream else 1
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    print(machine_line())
    raise_fd_limit()
    what = f"stream of {args.words} chunks" if args.stream else "completion"
    results: list[tuple[str, int]] = []
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chat2api-ir-")))
        sims: list[subprocess.Popen[bytes]] = []
        stack.callback(stop_all, sims)
        try:
            sim_url = start_sim(workdir, sims)
            sources = [("this", HERE / "src")] + [
                (rev, stack.enter_context(worktree(rev)) / "src") for rev in args.revisions
            ]
            for name, src in sources:
                results.append((name, measure(src, sim_url, workdir, args, name.replace("/", "_"))))
        except BaseException:
            show_logs(workdir)
            raise
    base = results[0][1]
    print(f"\ninstructions per {what} (concurrency {args.concurrency}, {args.requests} counted):")
    for name, per in results:
        print(f"  {name:>12}: {per:>12,}   ratio to this {per / base:.3f}")


if __name__ == "__main__":
    main()
