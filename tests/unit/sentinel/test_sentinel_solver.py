"""PowSolver: answers through worker processes without stalling the event loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chat2api.errors import ProofOfWorkTimeout, ProofOfWorkTooHard
from chat2api.sentinel.pow import verify_proof
from chat2api.sentinel.solver import PowSolver
from chat2api.sentinel.tokens import ConfigLayout, decode_token

SEED = "0.5172839506172839"


async def ticks_while_running(task: asyncio.Task[Any]) -> int:
    """5 ms ticks of the loop that ended with ``task`` still running."""
    ticks = 0
    while not task.done():
        await asyncio.sleep(0.005)
        if not task.done():
            ticks += 1
    return ticks


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


def test_a_layout_goes_to_the_workers(config_a: list[Any]) -> None:
    """A ConfigLayout is solved in a worker as its array is: the same kind of token, verified."""
    layout = ConfigLayout.of(config_a)

    async def main() -> str:
        async with PowSolver(workers=1, time_budget=30, inline_attempts=0) as solver:
            return await solver.solve(SEED, "00fff", layout, "fnv")

    token = asyncio.run(main())
    assert verify_proof(SEED, "00fff", token, hash="fnv")
    assert decode_token(token)[:3] == config_a[:3] and decode_token(token)[10:] == config_a[10:]


def test_event_loop_keeps_ticking_during_a_solve(config_a: list[Any]) -> None:
    """The loop keeps ticking while a worker burns its whole 1 s budget.

    A solve that held the loop, wholly or while waiting for the worker's answer, would
    leave no tick that ends with the solve still running. The worker is started by a
    first solve, so that ticks during its start-up cannot stand in for ticks during work.
    """

    async def main() -> int:
        async with PowSolver(workers=1, time_budget=1.0) as solver:
            assert await solver.solve(SEED, "000f", config_a)  # past inline: the worker starts
            solve = asyncio.create_task(solver.solve(SEED, "000000000", config_a))
            ticks = await ticks_while_running(solve)
            with pytest.raises(ProofOfWorkTimeout):
                await solve
            return ticks

    # An idle loop makes about 200 such ticks in the 1 s budget; a held one makes none.
    assert asyncio.run(main()) >= 3


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
    """With a difficulty limit, a harder challenge raises ProofOfWorkTooHard before any search.

    The refused challenge comes with a config no search accepts (it raises ValueError on
    it): ProofOfWorkTooHard instead of that error shows the search never started.
    """

    async def main() -> None:
        async with PowSolver(workers=0, time_budget=10, difficulty_limit="000032") as solver:
            with pytest.raises(ValueError, match="config"):
                await solver.solve(SEED, "0fffff", [])  # a search does choke on it
            with pytest.raises(ProofOfWorkTooHard):
                await solver.solve(SEED, "000010", [])
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
