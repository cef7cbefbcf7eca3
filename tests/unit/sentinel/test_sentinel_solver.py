"""PowSolver: answers through worker processes without stalling the event loop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from chat2api.errors import ProofOfWorkTimeout, ProofOfWorkTooHard
from chat2api.sentinel.pow import verify_proof
from chat2api.sentinel.solver import PowSolver

SEED = "0.5172839506172839"


async def heartbeat_gaps(stop: asyncio.Event) -> list[float]:
    """Gaps between 5 ms ticks of the loop until ``stop`` is set."""
    gaps: list[float] = []
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    return gaps


def test_process_solver_answers_and_verifies(config_a: list[Any]) -> None:
    """Both hashes are solved in worker processes and the tokens verify."""

    async def main() -> tuple[str, str]:
        async with PowSolver(workers=2, time_budget=30) as solver:
            return await asyncio.gather(
                solver.solve(SEED, "003a2f", config_a),
                solver.solve(SEED, "00fff", config_a, "fnv"),
            )

    sha3_token, fnv_token = asyncio.run(main())
    assert verify_proof(SEED, "003a2f", sha3_token, hash="sha3")
    assert verify_proof(SEED, "00fff", fnv_token, hash="fnv")
    assert fnv_token.endswith("~S")


def test_event_loop_keeps_ticking_during_a_solve(config_a: list[Any]) -> None:
    """The loop keeps ticking while a worker burns its whole 1 s budget.

    A solve on the loop's thread would show one gap of the full second; the
    bound is half of it, so a loaded machine does not make this flaky.
    """

    async def main() -> list[float]:
        async with PowSolver(workers=1, time_budget=1.0) as solver:
            stop = asyncio.Event()
            beat = asyncio.create_task(heartbeat_gaps(stop))
            with pytest.raises(ProofOfWorkTimeout):
                await solver.solve(SEED, "000000000", config_a)
            stop.set()
            return await beat

    gaps = asyncio.run(main())
    assert len(gaps) > 5
    assert max(gaps) < 0.5


def test_thread_mode_for_tests(config_a: list[Any]) -> None:
    """workers=0 runs the search in a thread and reports attempts."""

    async def main() -> None:
        async with PowSolver(workers=0, time_budget=10) as solver:
            result = await solver.search(SEED, "0fff", config_a)
            assert result.token is not None
            assert result.attempts >= 1
            assert verify_proof(SEED, "0fff", result.token, hash="sha3")

    asyncio.run(main())


def test_too_hard_is_refused_without_solving(config_a: list[Any]) -> None:
    """With a difficulty limit, a harder challenge raises ProofOfWorkTooHard at once."""

    async def main() -> None:
        async with PowSolver(workers=0, time_budget=10, difficulty_limit="000032") as solver:
            started = time.monotonic()
            with pytest.raises(ProofOfWorkTooHard):
                await solver.solve(SEED, "000010", config_a)
            assert time.monotonic() - started < 0.5
            assert await solver.solve(SEED, "0fffff", config_a)

    asyncio.run(main())


def test_closed_solver_refuses_work(config_a: list[Any]) -> None:
    """After aclose, solve raises instead of queueing forever."""

    async def main() -> None:
        solver = PowSolver(workers=1, time_budget=1)
        await solver.aclose()
        with pytest.raises(RuntimeError):
            await solver.solve(SEED, "0", config_a)

    asyncio.run(main())


def test_constructor_validates() -> None:
    """Negative workers and non-positive budgets are rejected."""
    with pytest.raises(ValueError):
        PowSolver(workers=-1)
    with pytest.raises(ValueError):
        PowSolver(time_budget=0)
