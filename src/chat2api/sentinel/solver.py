"""Proof-of-work off the event loop.

hashlib holds the GIL for inputs this short, so threads would stall the
loop; :class:`PowSolver` runs :func:`~chat2api.sentinel.pow.search` in a
``ProcessPoolExecutor``. Workers are started by ``forkserver`` (``spawn``
where that is missing): forking a process that runs an event loop and
threads is unsafe. The executor is created in the constructor; its worker
processes start on the first solve, and even that submit runs in a thread so
the loop never waits for a process to spawn. Create one solver in the app's
lifespan and close it there.

Easy challenges (expected attempts at most ``inline_attempts``, a few
hundred microseconds of hashing) are solved on the calling thread: a trip
through the pool costs more than the work itself.

The time budget counts from the moment ``solve`` is called, including time
queued behind other solves. A cancelled ``solve`` cannot stop a worker that
already runs; the budget bounds it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Any

from chat2api.errors import ProofOfWorkTimeout, ProofOfWorkTooHard
from chat2api.sentinel.pow import HashName, SearchResult, is_too_hard, search
from chat2api.sentinel.tokens import ConfigLayout

__all__ = ["PowSolver"]

logger = logging.getLogger(__name__)


def _search_until(
    seed: str,
    difficulty: str,
    config: list[Any] | ConfigLayout,
    hash: HashName,
    time_budget: float,
    submitted_at: float,
) -> SearchResult:
    # Runs in the worker; wall-clock time is what both processes share.
    remaining = time_budget - (time.time() - submitted_at)
    return search(seed, difficulty, config, hash=hash, time_budget=max(0.0, remaining))


def expected_attempts(difficulty: str) -> float:
    """Mean number of hashes to find an answer: ``16**L / (int(d, 16) + 1)``."""
    return float(16 ** len(difficulty)) / (int(difficulty or "0", 16) + 1)


def _process_context() -> multiprocessing.context.BaseContext:
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


class PowSolver:
    """Solves sentinel proof-of-work challenges in worker processes.

    ``workers`` processes run solves concurrently (more wait in a queue);
    ``workers=0`` runs them in a thread instead, for tests. ``time_budget``
    seconds per solve, after which ``ProofOfWorkTimeout``; with
    ``difficulty_limit`` set, difficulties :func:`is_too_hard` for it raise
    ``ProofOfWorkTooHard`` without solving.
    """

    def __init__(
        self,
        workers: int = 1,
        time_budget: float = 10.0,
        *,
        difficulty_limit: str | None = None,
        inline_attempts: float = 256,
    ) -> None:
        if workers < 0:
            raise ValueError("workers must be >= 0")
        if time_budget <= 0:
            raise ValueError("time_budget must be positive")
        self.workers = workers
        self.time_budget = time_budget
        self.difficulty_limit = difficulty_limit
        self.inline_attempts = inline_attempts
        self._executor = self._new_executor()
        self._closed = False

    def _new_executor(self) -> Executor:
        if self.workers == 0:
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="pow")
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=_process_context())

    async def search(
        self, seed: str, difficulty: str, config: list[Any] | ConfigLayout, hash: HashName = "sha3"
    ) -> SearchResult:
        """Run :func:`~chat2api.sentinel.pow.search` in a worker; never raises on timeout."""
        if self._closed:
            raise RuntimeError("PowSolver is closed")
        if self.difficulty_limit is not None and is_too_hard(difficulty, self.difficulty_limit):
            raise ProofOfWorkTooHard(f"Proof of work difficulty too high: {difficulty}")
        if expected_attempts(difficulty) <= self.inline_attempts:
            return search(seed, difficulty, config, hash=hash, time_budget=self.time_budget)
        executor = self._executor
        job = functools.partial(
            _search_until,
            seed,
            difficulty,
            config if isinstance(config, ConfigLayout) else list(config),
            hash,
            self.time_budget,
            time.time(),
        )
        try:
            future = await asyncio.to_thread(executor.submit, job)
            return await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:
            logger.warning("proof-of-work worker died; starting a new pool")
            if self._executor is executor and not self._closed:
                self._executor = self._new_executor()
                executor.shutdown(wait=False, cancel_futures=True)
            raise ProofOfWorkTimeout("proof-of-work worker died") from exc

    async def solve(
        self, seed: str, difficulty: str, config: list[Any] | ConfigLayout, hash: HashName = "sha3"
    ) -> str:
        """The proof token; ``ProofOfWorkTimeout`` when the budget runs out."""
        result = await self.search(seed, difficulty, config, hash)
        if result.token is None:
            raise ProofOfWorkTimeout(
                f"no proof of work for difficulty {difficulty} within {self.time_budget:g}s"
            )
        return result.token

    def close(self) -> None:
        """Stop accepting work and wait for running solves (bounded by the budget)."""
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def aclose(self) -> None:
        """:meth:`close` without blocking the event loop."""
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> PowSolver:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
