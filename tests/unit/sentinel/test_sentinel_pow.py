"""Proof-of-work answers: spec vectors, independent verification, budget."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat2api.errors import ProofOfWorkTimeout, UpstreamUnavailable
from chat2api.sentinel import BrowserProfile, build_config
from chat2api.sentinel import pow as pow_module
from chat2api.sentinel.pow import (
    WINDOW,
    fnv1a_hex,
    give_up_token,
    is_too_hard,
    search,
    solve,
    solve_reference,
    verify_proof,
)
from chat2api.sentinel.tokens import ConfigLayout, decode_token

EXAMPLE_A_TOKEN = (
    "gAAAAABWzMwMDAsIk1vbiBKYW4gMDUgMjAyNiAxMDowMDowMCBHTVQtMDgwMCAoUGFjaWZpYyBTdGFuZGFyZCBUaW1lKSIs"
    "NDI5NDcwNTE1Miw3MjIsIk1vemlsbGEvNS4wIChXaW5kb3dzIE5UIDEwLjA7IFdpbjY0OyB4NjQpIEFwcGxlV2ViS2l0LzUz"
    "Ny4zNiAoS0hUTUwsIGxpa2UgR2Vja28pIENocm9tZS8xMzEuMC4wLjAgU2FmYXJpLzUzNy4zNiIsImh0dHBzOi8vY2RuLm9h"
    "aXN0YXRpYy5jb20vYXNzZXRzL2FwcC1leGFtcGxlLmpzIiwicHJvZC0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2Rl"
    "ZjAxMjM0NTY3IiwiZW4tVVMiLCJlbi1VUyxlbiIsMCwid2ViZHJpdmVy4oiSZmFsc2UiLCJsb2NhdGlvbiIsIm9uZm9jdXMi"
    "LDEyMzQuNSwiMTExMTExMTEtMjIyMi00MzMzLTg0NDQtNTU1NTU1NTU1NTU1IiwiIiw4LDE3Njc2MzYwMDAxMjMuNF0="
)
EXAMPLE_B_TOKEN = (
    "gAAAAABWzMwMDAsIk1vbiBKYW4gMDUgMjAyNiAxMDowMDowMCBHTVQtMDgwMCAoUGFjaWZpYyBTdGFuZGFyZCBUaW1lKSIs"
    "NDI5NDk2NzI5Niw1NTQsIk1vemlsbGEvNS4wIChXaW5kb3dzIE5UIDEwLjA7IFdpbjY0OyB4NjQpIEFwcGxlV2ViS2l0LzUz"
    "Ny4zNiAoS0hUTUwsIGxpa2UgR2Vja28pIENocm9tZS8xMzEuMC4wLjAgU2FmYXJpLzUzNy4zNiIsImh0dHBzOi8vY2hhdGdw"
    "dC5jb20vYmFja2VuZC1hcGkvc2VudGluZWwvc2RrLmpzIiwicHJvZC0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2Rl"
    "ZjAxMjM0NTY3IiwiZW4tVVMiLCJlbi1VUyxlbiIsMCwid2ViZHJpdmVy4oiSZmFsc2UiLCJfcmVhY3RMaXN0ZW5pbmdhYmMx"
    "MjNkZWY0NSIsIm9uZm9jdXMiLDEyMzQuNSwiMTExMTExMTEtMjIyMi00MzMzLTg0NDQtNTU1NTU1NTU1NTU1IiwiIiw4LDE3"
    "Njc2MzYwMDAxMjMuNCwwLDAsMCwwLDAsMCwwXQ==~S"
)

Hash = Literal["sha3", "fnv"]

FNV_VECTORS = json.loads(
    (Path(__file__).parents[2] / "fixtures" / "fnv_vectors.json").read_text("utf-8")
)["vectors"]
SEED = "0.5172839506172839"
DIFFICULTY = "003a2f"
UA_131 = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)


def independent_fnv(text: str) -> str:
    """FNV-1a over UTF-16 code units + finaliser, written out from spec 3.3."""
    h = 2166136261
    units = text.encode("utf-16-le", "surrogatepass")
    for i in range(0, len(units), 2):
        h ^= units[i] | (units[i + 1] << 8)
        h = (h * 16777619) % 2**32
    h ^= h >> 16
    h = (h * 2246822507) % 2**32
    h ^= h >> 13
    h = (h * 3266489909) % 2**32
    h ^= h >> 16
    return format(h, "08x")


def independently_verifies(seed: str, difficulty: str, token: str, hash: Hash) -> bool:
    """Spec 3.4 recomputed here without the package's helpers."""
    assert token.startswith("gAAAAAB")
    body = token[len("gAAAAAB") :]
    if hash == "fnv":
        assert body.endswith("~S")
        body = body[:-2]
    else:
        assert not body.endswith("~S")
    text = seed + body
    if hash == "sha3":
        hex_digest = hashlib.sha3_512(text.encode()).hexdigest()
    else:
        hex_digest = independent_fnv(text)
    return hex_digest[: len(difficulty)] <= difficulty


def assert_plausible(token: str, hash: Hash, ua: str = UA_131) -> None:
    """The decoded config is an 18-array with an integer nonce and the UA."""
    body = token[len("gAAAAAB") :].removesuffix("~S")
    config = json.loads(base64.b64decode(body))
    assert isinstance(config, list)
    assert len(config) == 18
    assert isinstance(config[3], int)
    assert isinstance(config[9], int)
    assert config[4] == ua


def test_example_a_reference_sha3_token_exact(config_a: list[Any]) -> None:
    """Reference solver reproduces worked example A (SHA3, nonce 722) byte for byte."""
    token = solve_reference(SEED, DIFFICULTY, config_a, hash="sha3")
    assert token == EXAMPLE_A_TOKEN
    assert decode_token(token)[3] == 722
    assert hashlib.sha3_512((SEED + token[7:]).encode()).hexdigest().startswith("0011058c6ec66837")


def test_example_b_reference_fnv_token_exact(config_b: list[Any]) -> None:
    """Reference solver reproduces worked example B (FNV, nonce 554, ~S) byte for byte."""
    token = solve_reference(SEED, DIFFICULTY, config_b, hash="fnv")
    assert token == EXAMPLE_B_TOKEN
    assert fnv1a_hex(SEED + token[7:-2]) == "0033591d"


@pytest.mark.parametrize("vector", FNV_VECTORS, ids=lambda v: repr(v["input"]))
def test_independent_fnv_gives_the_shared_vectors(vector: dict[str, str]) -> None:
    """The oracle these tests check proofs with gives the shared FNV vectors too.

    (fnv1a_hex itself: test_sentinel_e3.py.)
    """
    assert independent_fnv(vector["input"]) == vector["fnv"]


def test_fnv_counts_utf16_code_units() -> None:
    """Non-BMP characters hash as two surrogate code units, as in JS."""
    assert fnv1a_hex("a😀") == independent_fnv("a😀")
    assert fnv1a_hex("é") == independent_fnv("é")


def test_give_up_token_e3_form() -> None:
    """The E3 give-up token matches the spec's exhausted-search fallback."""
    assert give_up_token(SEED, "fnv") == "gAAAAABwQ8Lk5FbGpA2NcR9dShT6gYjU7VxZ4DImUi~S"
    assert not verify_proof(SEED, "f", give_up_token(SEED, "fnv"), hash="fnv")


def test_verify_proof_accepts_examples_and_rejects_tampering() -> None:
    """verify_proof follows spec 3.4 on the worked examples."""
    assert verify_proof(SEED, DIFFICULTY, EXAMPLE_A_TOKEN, hash="sha3")
    assert verify_proof(SEED, DIFFICULTY, EXAMPLE_B_TOKEN, hash="fnv")
    assert not verify_proof("0.1", DIFFICULTY, EXAMPLE_A_TOKEN, hash="sha3")
    assert not verify_proof(SEED, DIFFICULTY, "gAAAAAC" + EXAMPLE_A_TOKEN[7:], hash="sha3")


CASES = [
    (seed, difficulty, hash)
    for seed in ("0.5172839506172839", "0.1", "0.98765432109876543", "seed-é")
    for difficulty, hash in (
        ("003a2f", "sha3"),
        ("00fff", "sha3"),  # odd length
        ("0", "sha3"),
        ("01", "sha3"),
        ("0a2", "sha3"),  # odd length
        ("", "sha3"),
        ("003a2f", "fnv"),
        ("01f", "fnv"),  # odd length
        ("0fffffffff", "fnv"),  # longer than the 8 FNV hex digits
    )
]


@pytest.mark.parametrize(("seed", "difficulty", "hash"), CASES)
def test_solve_answers_verify_independently(
    seed: str, difficulty: str, hash: Hash, config_a: list[Any]
) -> None:
    """solve's token passes a hash-and-compare check written in this test."""
    token = solve(seed, difficulty, config_a, hash=hash, time_budget=30)
    assert independently_verifies(seed, difficulty, token, hash)
    assert_plausible(token, hash)


def test_search_finds_first_answer_in_its_own_order(config_a: list[Any]) -> None:
    """Every candidate the fast loop skipped really fails (no false negatives)."""
    config = config_a
    result = search(SEED, "0a", config, hash="sha3", time_budget=10)
    assert result.token is not None
    found = decode_token(result.token)
    # Walk the same order (nonce-major, index 9 within the window) by hand.
    first_elapsed = found[9] - (result.attempts - 1) % 64
    for k in range(result.attempts - 1):
        nonce, offset = divmod(k, 64)
        candidate = list(config)
        candidate[3], candidate[9] = nonce, first_elapsed + offset
        text = json.dumps(candidate, separators=(",", ":"), ensure_ascii=False)
        enc = base64.b64encode(text.encode()).decode()
        assert not independently_verifies(SEED, "0a", "gAAAAAB" + enc, "sha3")


@settings(max_examples=40, deadline=None)
@given(
    seed=st.text(min_size=0, max_size=30),
    # a leading digit 0-2 and up to two more: at worst 1 in 4096 hashes passes
    difficulty=st.builds(
        str.__add__, st.sampled_from("012"), st.text(alphabet="0123456789abcdef", max_size=2)
    ),
    hash=st.sampled_from(["sha3", "fnv"]),
)
def test_random_seeds_easy_difficulties_always_verify(
    seed: str, difficulty: str, hash: Hash
) -> None:
    """For any seed and an easy difficulty the answer verifies."""
    seed = seed.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    config = [3000, "d", 1, 0, UA_131, "s", None, "en-US", "en-US,en", 0, "k", "l", "m", 1.5]
    config += ["u", "", 8, 1767636000123.4]
    token = solve(seed, difficulty, config, hash=hash, time_budget=30)
    assert independently_verifies(seed, difficulty, token, hash)


@pytest.mark.parametrize("hash", ["sha3", "fnv"])
def test_impossible_difficulty_times_out(hash: Hash, config_a: list[Any]) -> None:
    """An impossible difficulty raises ProofOfWorkTimeout naming the budget, not a give-up token."""
    with pytest.raises(ProofOfWorkTimeout, match=r"within 0\.3s"):
        solve(SEED, "000000000", config_a, hash=hash, time_budget=0.3)


@pytest.mark.parametrize("hash", ["sha3", "fnv"])
def test_search_stops_at_the_first_reading_past_the_budget(hash: Hash, config_a: list[Any]) -> None:
    """The search reads its clock before each window of attempts and stops once past the budget.

    The clock advances 0.25 s per reading; with a 1 s budget the readings at 0.25, 0.5
    and 0.75 s each allow one window, the one at 1.0 s ends the search.
    """
    readings: list[float] = []

    def clock() -> float:
        readings.append(0.25 * len(readings))
        return readings[-1]

    result = search(SEED, "000000000", config_a, hash=hash, time_budget=1.0, clock=clock)
    assert result.token is None
    assert result.attempts == 3 * WINDOW
    assert result.seconds >= 1.0


def test_search_reports_attempts_on_timeout(config_a: list[Any]) -> None:
    """search returns token None plus the attempts it made when time runs out."""
    result = search(SEED, "000000000", config_a, time_budget=0.2)
    assert result.token is None
    assert result.attempts > 0
    assert result.seconds >= 0.2


def test_malformed_difficulty_is_an_upstream_error(config_a: list[Any]) -> None:
    """A non-hex difficulty is reported as a malformed upstream answer."""
    with pytest.raises(UpstreamUnavailable):
        solve(SEED, "00ZZ", config_a, time_budget=1)
    with pytest.raises(UpstreamUnavailable):
        is_too_hard("0A3F")


def test_short_config_rejected_by_fast_solver() -> None:
    """The fast solver needs index 9; a 5-element config is refused clearly."""
    with pytest.raises(ValueError, match="at least 10"):
        solve(SEED, "0", [3000, "date", 1, 0, "ua"], time_budget=1)


@pytest.mark.parametrize(
    ("difficulty", "limit", "too_hard"),
    [
        ("000032", "000032", True),  # equal: chat2api refuses at <=
        ("000031", "000032", True),
        ("000033", "000032", False),
        ("003a2f", "000032", False),
        ("00003a", "000032", False),
        ("00003a", "00003a", True),
        ("000000", "000032", True),
        ("0000", "000032", False),  # 1/65536 of hashes pass: easier
        ("00000", "000032", True),  # 1/16**5 vs 51/16**6: harder
        ("00003", "000032", False),  # 4/16**5 = 64/16**6 > 51/16**6, though it sorts first
        ("0000320", "000032", True),  # same threshold up to the extra digit
        ("000032f", "000032", True),  # exactly the limit's fraction
        ("0000330", "000032", False),
        ("0fffff", "000032", False),
        ("", "000032", False),
    ],
)
def test_is_too_hard_table(difficulty: str, limit: str, too_hard: bool) -> None:
    """is_too_hard compares acceptance fractions, equal to string compare at equal length."""
    assert is_too_hard(difficulty, limit) is too_hard


@settings(max_examples=200)
@given(a=st.integers(0, 0xFFFFFF), b=st.integers(0, 0xFFFFFF))
def test_is_too_hard_equals_string_compare_for_equal_lengths(a: int, b: int) -> None:
    """For equal lengths the rule is exactly chat2api's `difficulty <= limit`."""
    d, limit = f"{a:06x}", f"{b:06x}"
    assert is_too_hard(d, limit) is (d <= limit)


# -- the compiled FNV (fnv-hash-fast) against this module's Python loop

E3_CONFIG = build_config(
    BrowserProfile(sid="11111111-2222-4333-8444-555555555555", time_origin=1767636000123.4),
    era="e3",
)


def test_compiled_fnv_is_in_use() -> None:
    """The locked dependency's extension is importable here, so the C path is what runs."""
    assert pow_module._C_FNV is not None


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=600))
def test_compiled_fnv_hex_equals_python_loop(text: str) -> None:
    """fnv1a_hex (C for ASCII text) equals the Python loop and the test's own FNV."""
    assert fnv1a_hex(text) == pow_module._fnv1a_hex_py(text) == independent_fnv(text)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.text(alphabet=st.characters(max_codepoint=127), max_size=40),
    difficulty=st.sampled_from(["0fffff", "1f", "07ffff", "00ffff", "ffff", "0"]),
)
def test_compiled_fnv_search_walks_the_same_candidates(seed: str, difficulty: str) -> None:
    """The C search finds the same (nonce, elapsed) after as many attempts as the Python one."""
    config_a = E3_CONFIG
    clock = iter(itertools.count(1000.0, 0.0001)).__next__  # a fixed, deterministic clock
    python = pow_module._search_fnv(
        seed, difficulty, ConfigLayout.of(config_a), 1000.0, 1001.0, clock
    )
    clock = iter(itertools.count(1000.0, 0.0001)).__next__
    assert pow_module._C_FNV is not None
    compiled = pow_module._search_fnv_c(
        pow_module._C_FNV, seed, difficulty, ConfigLayout.of(config_a), 1000.0, 1001.0, clock
    )
    assert compiled == python
    assert python[0] is not None


def test_non_ascii_seed_takes_the_python_loop_and_verifies(config_a: list[Any]) -> None:
    """A seed beyond ASCII (code units are not bytes) is solved by the Python loop, correctly."""
    for seed in ("é0.5", "😀seed", "ü"):
        token = solve(seed, "0fffff", config_a, hash="fnv", time_budget=30)
        assert independently_verifies(seed, "0fffff", token, "fnv")
