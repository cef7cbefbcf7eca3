"""``serve --workers N``: N processes answering on one port, sharing the store.

The parent binds the listening socket, then forks the workers; each runs its
own event loop, app and lifespan (its own store connection, upstream
sessions, PoW pool and token worker) on the inherited socket, and the
kernel hands each new connection to one of them. What must hold across
workers lives in the store: the pool's round-robin cursor, cooldowns, dead
marks and the per-account concurrency slots (``pool.slots``), so the
limits are the same with one worker or many, and with several instances on
one Redis. With SQLite the workers share the file (WAL; ``busy_timeout``).

The parent only supervises: a worker that dies is replaced (its account
slots expire by themselves, ``SLOT_LEASE_SECONDS``), SIGTERM or SIGINT
stops them all. Workers dying within seconds of their start, again and
again, stop the server instead of looping.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

MAX_WORKERS = 64
QUICK_DEATH = 5.0  # seconds: a worker dead sooner than this counts as a failed start
QUICK_DEATHS = 5  # failed starts in a row before the server gives up


def worker_count(value: str) -> int:
    """``auto`` (the CPUs this process may run on) or a number from 1 to ``MAX_WORKERS``."""
    if value.strip().lower() == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return max(1, os.cpu_count() or 1)
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"--workers takes a number or auto, not {value!r}") from None
    if not 1 <= count <= MAX_WORKERS:
        raise ValueError(f"--workers must be between 1 and {MAX_WORKERS}, not {count}")
    return count


def _start(serve: Callable[[], None]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # the worker: default signal handling (uvicorn sets its own), then serve
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        serve()
        code = 0
    finally:
        os._exit(code)  # never back into the parent's code


def run_workers(count: int, serve: Callable[[], None]) -> int:
    """Fork ``count`` workers running ``serve``; supervise them (module docstring).

    Returns the parent's exit code: 0 after a requested stop, 1 when workers
    kept dying at start.
    """
    started: dict[int, float] = {}
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(started):
            with contextlib.suppress(ProcessLookupError):  # it just ended
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(count):
            pid = _start(serve)
            started[pid] = time.monotonic()
        log.info("%d workers started (pids %s)", count, ", ".join(map(str, started)))
        quick = 0
        while started:
            pid, status = os.wait()
            began = started.pop(pid, None)
            if began is None or stopping:
                continue
            lived = time.monotonic() - began
            log.warning(
                "worker %d ended (%s) after %.0fs; starting another",
                pid,
                _describe(status),
                lived,
            )
            quick = quick + 1 if lived < QUICK_DEATH else 0
            if quick >= QUICK_DEATHS:
                log.error("workers keep dying at start; stopping")
                stop(signal.SIGTERM, None)
                continue
            time.sleep(min(1.0, 0.2 * quick))
            started[_start(serve)] = time.monotonic()
        return 1 if quick >= QUICK_DEATHS else 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
