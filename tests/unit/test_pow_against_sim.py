"""Proofs from chat2api's solver pass the simulator's independent verifier."""

from __future__ import annotations

import pytest

from chat2api.sentinel import BrowserProfile, build_config, solve
from chat2api.sim.proofs import Verdict, verify_proof


@pytest.mark.parametrize("algorithm", ["sha3", "fnv"])
@pytest.mark.parametrize("difficulty", ["0fffff", "07ffff", "01ff", "00fff", "3"])
@pytest.mark.parametrize("seed", ["0.5172839506172839", "0.1", "0.99999"])
def test_solver_answers_pass_the_simulator(algorithm: str, difficulty: str, seed: str) -> None:
    """For both hashes and odd/even difficulties, the simulator accepts the answer."""
    config = build_config(BrowserProfile.random())
    token = solve(seed, difficulty, config, hash=algorithm, time_budget=20)  # type: ignore[arg-type]
    assert verify_proof(token, seed, difficulty, algorithm) is Verdict.OK
    assert verify_proof(token, seed + "1", "0000000", algorithm) is Verdict.WRONG
