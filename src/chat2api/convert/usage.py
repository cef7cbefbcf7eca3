"""Offline token counting (o200k / cl100k, compiled into ``toktok``; no download).

``toktok`` itself is imported only by the worker, ``convert.token_worker``.

Prompt tokens follow OpenAI's published chat accounting: 3 tokens per
message, plus the role and content tokens, plus 1 for a ``name``, plus 3 to
prime the reply.

Why a worker process: a tokenizer's vocabulary costs the process that uses
it ~74 MiB (o200k) or ~38 MiB (cl100k), more than the rest of the server.
``TokenCounter`` keeps it in one worker process, started on first use, and
is asked only where an answer needs counts: ``usage`` at the end of an
answer (off the time-to-first-byte path) and the ``max_tokens`` cut-off.
The cut-off asks only when a cheap exact bound cannot decide: every token
of these byte-level BPE encodings is at least one UTF-8 byte, so a text of
at most N bytes has at most N tokens and is never cut at N.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from chat2api.convert.models import Encoding

log = logging.getLogger(__name__)

_PER_MESSAGE = 3
_PER_NAME = 1
_REPLY_PRIMING = 3
_LINE_LIMIT = 2**28  # the longest answer line read from the worker (bytes)
# glibc's malloc asks for transparent huge pages for the worker's heap: the
# vocabulary's tables, read at random for every text, then take a few dozen
# TLB entries instead of ~16,000 (4 KiB pages), and a count made after the
# server has had the caches costs the worker about half the CPU.
_HUGE_PAGES = "glibc.malloc.hugetlb=1"


def worker_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The token worker's environment: ``environ`` with ``_HUGE_PAGES`` among its tunables."""
    env = dict(environ)
    tunables = env.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb" not in tunables:  # a deployment's own choice stands
        env["GLIBC_TUNABLES"] = f"{tunables}:{_HUGE_PAGES}" if tunables else _HUGE_PAGES
    return env


Turns = Sequence[tuple[str, str, str | None]]
"""A chat prompt as ``(role, text, name)`` turns."""


def prompt_texts(turns: Turns) -> list[str]:
    """The texts of a prompt that are counted: role, content and name of each turn."""
    texts: list[str] = []
    for role, text, name in turns:
        texts.append(role)
        texts.append(text)
        if name:
            texts.append(name)
    return texts


def prompt_tokens(turns: Turns, counts: Sequence[int]) -> int:
    """Prompt tokens from the counts of :func:`prompt_texts`, with the chat overheads."""
    names = sum(_PER_NAME for _, _, name in turns if name)
    return int(sum(counts)) + _PER_MESSAGE * len(turns) + names + _REPLY_PRIMING


class TokenCountError(RuntimeError):
    """The token counting worker failed or answered with an error."""


class _WorkerGone(TokenCountError):
    """The worker exited or garbled its output; a new one may do better."""


class TokenCounter:
    """Counts tokens in one worker process, started on first use (module docstring).

    The worker (``chat2api.convert.token_worker``) speaks JSON lines over its
    stdin/stdout pipes, driven by this event loop: a request costs at most one
    pipe write and one read here, no threads, no pickling. A worker that dies is
    replaced on the next request (one retry). Requests made in the same loop
    iteration share one write, and while a write is unanswered the next ones
    wait for its answers and then go in one write: under load each process
    wakes the other once per batch, not once per answer (a wake-up of the
    worker costs both processes more than counting a reply). With
    ``idle_seconds``, a worker that answered nothing for that long is stopped
    (end of its input), its vocabulary's memory handed back, and started again
    by the next request. Create one in the app's lifespan and close it there.
    """

    def __init__(self, idle_seconds: float | None = None) -> None:
        self._idle_seconds = idle_seconds or None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._last_used = 0.0  # loop time of the last answer with nothing left pending
        self._loop: asyncio.AbstractEventLoop | None = None  # the worker's (its pipes')
        self._retiring: set[asyncio.Task[None]] = set()
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._starting: asyncio.Lock | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count()
        self._closed = False
        # Requests made in one loop iteration go to the worker in one write.
        self._outbox: list[tuple[int, bytes]] = []
        self._flushing = False
        self._in_flight = 0  # requests written to the worker, not answered yet

    @property
    def pid(self) -> int | None:
        """The worker's process id, once started."""
        return self._proc.pid if self._proc is not None else None

    async def _worker(self) -> asyncio.subprocess.Process:
        proc = self._proc
        if proc is not None and self._reader is not None and not self._reader.done():
            return proc
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:  # single flight: one worker however many callers
            proc = self._proc
            if proc is not None and self._reader is not None and not self._reader.done():
                return proc
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "chat2api.convert.token_worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=_LINE_LIMIT,
                env=worker_environment(os.environ),
            )
            self._loop = asyncio.get_running_loop()
            self._proc = proc
            self._in_flight = 0
            self._reader = asyncio.create_task(self._read(proc))
            log.debug("token counting worker started (pid %d)", proc.pid)
            return proc

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        error: BaseException = _WorkerGone("the token counting worker exited")
        try:
            while line := await proc.stdout.readline():
                ident, result, problem = orjson.loads(line)
                if self._proc is proc:
                    self._answered()
                future = self._pending.pop(ident, None)
                if future is None or future.done():
                    continue
                if problem is None:
                    future.set_result(result)
                else:
                    future.set_exception(TokenCountError(problem))
        except (ValueError, orjson.JSONDecodeError, asyncio.LimitOverrunError) as exc:
            error = _WorkerGone(f"the token counting worker's answer was unreadable: {exc}")
            proc.kill()
        finally:
            # A worker retired for idleness has nothing pending; its successor's
            # requests are not this reader's to fail.
            if self._proc is proc or self._proc is None:
                # Queued requests are among the pending: their callers retry.
                self._outbox.clear()
                self._in_flight = 0
                pending, self._pending = self._pending, {}
                for future in pending.values():
                    if not future.done():
                        future.set_exception(error)

    def _answered(self) -> None:
        """One answer of the worker read: the requests held back go once all are answered."""
        self._in_flight -= 1
        if self._in_flight <= 0:
            self._in_flight = 0
            if self._outbox and not self._flushing:
                self._flush()

    def _arm_idle_stop(self) -> None:
        # One timer, not one per answer: when it fires it looks at the last use.
        loop = self._loop
        if self._idle_seconds is None or self._pending or self._proc is None or loop is None:
            return
        self._last_used = loop.time()
        if self._idle_timer is None:
            self._idle_timer = loop.call_at(self._last_used + self._idle_seconds, self._stop_idle)

    def _stop_idle(self) -> None:
        """Retire an idle worker: its input ends, it exits, its memory goes back."""
        self._idle_timer = None
        proc, loop = self._proc, self._loop
        if proc is None or loop is None or self._pending or self._outbox or self._closed:
            return  # the request now pending arms the timer again once answered
        assert self._idle_seconds is not None
        due = self._last_used + self._idle_seconds
        if loop.time() < due:  # used since the timer was set
            self._idle_timer = loop.call_at(due, self._stop_idle)
            return
        self._proc, reader = None, self._reader
        task = loop.create_task(self._retire(proc, reader))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
        log.debug("token counting worker idle for %ss: stopped", self._idle_seconds)

    @staticmethod
    async def _retire(proc: asyncio.subprocess.Process, reader: asyncio.Task[None] | None) -> None:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), timeout=5)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if reader is not None:
            await reader

    async def _call(self, request: list[Any]) -> Any:
        if self._closed:
            raise RuntimeError("TokenCounter is closed")
        try:
            return await self._send(request)
        finally:
            self._arm_idle_stop()

    async def _send(self, request: list[Any]) -> Any:
        for attempt in (1, 2):
            await self._worker()
            loop = self._loop
            assert loop is not None
            ident = next(self._ids)
            future = self._pending[ident] = loop.create_future()
            self._outbox.append((ident, orjson.dumps([ident, *request]) + b"\n"))
            if not self._flushing and not self._in_flight:  # else sent once answered
                self._flushing = True
                loop.call_soon(self._flush)
            try:
                return await future
            except _WorkerGone as exc:
                self._pending.pop(ident, None)
                if attempt == 2 or self._closed:  # no new worker once closed
                    raise
                log.warning("token counting worker died (%s); starting a new one", exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _flush(self) -> None:
        self._flushing = False
        queued, self._outbox = self._outbox, []
        stdin = self._proc.stdin if self._proc is not None else None
        if stdin is not None and not stdin.is_closing():
            with contextlib.suppress(ConnectionError):
                stdin.write(b"".join(line for _, line in queued))
                self._in_flight += len(queued)
                return
        for ident, _ in queued:  # the callers retry once on a new worker
            future = self._pending.pop(ident, None)
            if future is not None and not future.done():
                future.set_exception(_WorkerGone("the token counting worker's input is closed"))

    async def count(self, texts: Sequence[str], encoding: Encoding) -> list[int]:
        """Tokens in each of ``texts``; no worker trip when all are empty."""
        if not any(texts):
            return [0] * len(texts)
        counts: list[int] = await self._call(["count", encoding, list(texts)])
        return counts

    async def truncate(self, text: str, limit: int, encoding: Encoding) -> tuple[str, bool]:
        """``text`` cut to at most ``limit`` tokens, and whether it was cut."""
        if len(text.encode("utf-8", "surrogatepass")) <= limit:
            return text, False  # the byte bound (module docstring) decides
        kept, cut = await self._call(["truncate", encoding, text, limit])
        return str(kept), bool(cut)

    async def aclose(self) -> None:
        """Stop the worker: end of input, then a kill if it lingers."""
        self._closed = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self._retiring:
            await asyncio.gather(*self._retiring)
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), timeout=5)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if self._reader is not None:
            await self._reader
