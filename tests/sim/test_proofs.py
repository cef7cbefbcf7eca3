"""Proof-of-work verification against the spec's worked examples (section 3.5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chat2api.sim.proofs import Verdict, decode_config, fnv_hex, sha3_hex, verify_proof

VECTORS = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "fnv_vectors.json").read_text("utf-8")
)["vectors"]
SEED = "0.5172839506172839"
DIFFICULTY = "003a2f"
EXAMPLE_A = (
    "gAAAAABWzMwMDAsIk1vbiBKYW4gMDUgMjAyNiAxMDowMDowMCBHTVQtMDgwMCAoUGFjaWZpYyBTdGFuZGFyZCBUaW1lKSIs"
    "NDI5NDcwNTE1Miw3MjIsIk1vemlsbGEvNS4wIChXaW5kb3dzIE5UIDEwLjA7IFdpbjY0OyB4NjQpIEFwcGxlV2ViS2l0LzUz"
    "Ny4zNiAoS0hUTUwsIGxpa2UgR2Vja28pIENocm9tZS8xMzEuMC4wLjAgU2FmYXJpLzUzNy4zNiIsImh0dHBzOi8vY2RuLm9h"
    "aXN0YXRpYy5jb20vYXNzZXRzL2FwcC1leGFtcGxlLmpzIiwicHJvZC0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2Rl"
    "ZjAxMjM0NTY3IiwiZW4tVVMiLCJlbi1VUyxlbiIsMCwid2ViZHJpdmVy4oiSZmFsc2UiLCJsb2NhdGlvbiIsIm9uZm9jdXMi"
    "LDEyMzQuNSwiMTExMTExMTEtMjIyMi00MzMzLTg0NDQtNTU1NTU1NTU1NTU1IiwiIiw4LDE3Njc2MzYwMDAxMjMuNF0="
)
EXAMPLE_B = (
    "gAAAAABWzMwMDAsIk1vbiBKYW4gMDUgMjAyNiAxMDowMDowMCBHTVQtMDgwMCAoUGFjaWZpYyBTdGFuZGFyZCBUaW1lKSIs"
    "NDI5NDk2NzI5Niw1NTQsIk1vemlsbGEvNS4wIChXaW5kb3dzIE5UIDEwLjA7IFdpbjY0OyB4NjQpIEFwcGxlV2ViS2l0LzUz"
    "Ny4zNiAoS0hUTUwsIGxpa2UgR2Vja28pIENocm9tZS8xMzEuMC4wLjAgU2FmYXJpLzUzNy4zNiIsImh0dHBzOi8vY2hhdGdw"
    "dC5jb20vYmFja2VuZC1hcGkvc2VudGluZWwvc2RrLmpzIiwicHJvZC0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2Rl"
    "ZjAxMjM0NTY3IiwiZW4tVVMiLCJlbi1VUyxlbiIsMCwid2ViZHJpdmVy4oiSZmFsc2UiLCJfcmVhY3RMaXN0ZW5pbmdhYmMx"
    "MjNkZWY0NSIsIm9uZm9jdXMiLDEyMzQuNSwiMTExMTExMTEtMjIyMi00MzMzLTg0NDQtNTU1NTU1NTU1NTU1IiwiIiw4LDE3"
    "Njc2MzYwMDAxMjMuNCwwLDAsMCwwLDAsMCwwXQ==~S"
)


def test_example_a_sha3_passes() -> None:
    """Example A (E2, SHA3-512, nonce 722) verifies; its digest starts 0011058c6ec66837."""
    assert verify_proof(EXAMPLE_A, SEED, DIFFICULTY, "sha3") is Verdict.OK
    assert sha3_hex(SEED + EXAMPLE_A[7:]).startswith("0011058c6ec66837")


def test_example_a_decodes_to_nonce_722() -> None:
    """The config inside Example A is the spec's 18-element array with nonce 722."""
    config = decode_config(EXAMPLE_A)
    assert config is not None and len(config) == 18
    assert config[3] == 722 and config[10] == "webdriver−false"


def test_example_b_fnv_with_suffix_passes() -> None:
    """Example B (E3, FNV, `~S`) verifies; fnv(seed + payload) is 0033591d."""
    assert verify_proof(EXAMPLE_B, SEED, DIFFICULTY, "fnv") is Verdict.OK
    assert fnv_hex(SEED + EXAMPLE_B[7:-2]) == "0033591d"


def test_examples_fail_under_the_other_hash_or_seed() -> None:
    """The same tokens are wrong for another seed, and a harder difficulty rejects them."""
    assert verify_proof(EXAMPLE_A, "0.1", DIFFICULTY, "sha3") is Verdict.WRONG
    assert verify_proof(EXAMPLE_A, SEED, "001105", "sha3") is Verdict.OK  # equal passes (<=)
    assert verify_proof(EXAMPLE_A, SEED, "001104", "sha3") is Verdict.WRONG
    assert verify_proof(EXAMPLE_B, SEED, "003358", "fnv") is Verdict.WRONG


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: repr(v["input"]))
def test_fnv_vectors(vector: dict[str, str]) -> None:
    """The spec's FNV-1a test vectors (JS charCodeAt semantics), from the shared fixture."""
    assert fnv_hex(vector["input"]) == vector["fnv"]


def test_fnv_uses_utf16_code_units() -> None:
    """A non-BMP character hashes as two UTF-16 surrogate code units."""
    assert fnv_hex("😀") == fnv_hex(
        "\ud83d\ude00".encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    )
    assert fnv_hex("😀") != fnv_hex("😁")


def test_sha3_sanity() -> None:
    """sha3_512("") begins a69f73cca23a9ac5."""
    assert sha3_hex("").startswith("a69f73cca23a9ac5")


def test_give_up_missing_and_malformed() -> None:
    """Given-up answers, missing headers and foreign prefixes are told apart."""
    assert verify_proof("gAAAAABwQ8Lk5FbGpA2NcR9dShT6gYjU7VxZ4DImUi~S", SEED, "ffffff") is (
        Verdict.GIVEN_UP
    )
    assert verify_proof(None, SEED, DIFFICULTY) is Verdict.MISSING
    assert verify_proof("", SEED, DIFFICULTY) is Verdict.MISSING
    assert verify_proof("gAAAAAC" + EXAMPLE_A[7:], SEED, DIFFICULTY) is Verdict.MALFORMED
    assert verify_proof("gAAAAAB", SEED, DIFFICULTY) is Verdict.MALFORMED
