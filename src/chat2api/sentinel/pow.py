"""Proof-of-work answers for the sentinel challenge (spec 3.3, 3.4).

The answer is ``gAAAAAB`` + enc (+ ``~S`` for FNV) where
``enc = base64(JSON(config))`` and ``HASH(seed + enc)`` in lowercase hex has
a prefix ``<=`` the difficulty. Everything here is plain blocking code; run
it off the event loop (see :mod:`chat2api.sentinel.solver`).

Why :func:`search` is faster than hashing each candidate from scratch:

* Candidates differ only at config index 3 (nonce) and index 9 (elapsed
  ms). The outer loop walks the nonce; the inner loop walks index 9 over a
  window of :data:`WINDOW` values near the real elapsed time, as a browser's
  elapsed-ms would move. Index 9 sits after the big fixed strings (UA,
  script URL, build id), so per nonce the hash state of
  ``seed + base64(json up to index 9)`` is computed once, cut at a 3-byte
  boundary so base64 of the prefix is independent of what follows.
* The JSON bytes between that cut and the end are ``<0-2 fixed bytes> +
  str(elapsed) + <fixed tail>``; which fixed bytes depends only on the cut's
  remainder mod 3, so their base64 is precomputed per (remainder, elapsed).
  One attempt is then ``copy()``, ``update(tail)``, ``digest()`` and one
  ``bytes`` comparison against a precomputed 64-byte bound.
* ``hex[:L] <= d`` equals ``digest <= bytes.fromhex(d [+ "f" if L odd]) +
  b"\\xff" * rest`` (and for FNV an integer bound), so no hex string is built.
* FNV-1a has no state to copy in C, and in Python it costs about 60 ns a
  byte: with ``fnv-hash-fast`` (a C extension with wheels on PyPI) compiled,
  an ASCII seed's attempt hashes its whole ``seed + enc`` bytes in C instead
  (base64 is ASCII, so bytes are UTF-16 code units): a 0fffff proof went
  from ~0.22 ms to ~0.03 ms. Without it, or for a non-ASCII seed, the Python
  loop runs, the same candidates in the same order (tests compare the two).

The search never gives up at an attempt count (the nonce grows past the
browser's 500000, which the server cannot see); only the time budget ends it.
"""

from __future__ import annotations

import array
import base64
import binascii
import hashlib
import re
import sys
import time
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from chat2api.errors import ProofOfWorkTimeout, UpstreamUnavailable
from chat2api.sentinel.jsjson import js_json, js_utf8
from chat2api.sentinel.tokens import (
    FNV_SUFFIX,
    GIVE_UP_MARKER,
    PROOF_PREFIX,
    ConfigLayout,
    encode_config,
)

__all__ = [
    "DEFAULT_DIFFICULTY_LIMIT",
    "WINDOW",
    "HashName",
    "SearchResult",
    "fnv1a_hex",
    "give_up_token",
    "hash_hex",
    "is_too_hard",
    "search",
    "solve",
    "solve_reference",
    "verify_proof",
]

HashName = Literal["sha3", "fnv"]

DEFAULT_DIFFICULTY_LIMIT = "000032"
"""chat2api's default ``POW_DIFFICULTY``: refuse difficulties at or below it."""

WINDOW = 64
"""How many index-9 values are tried per nonce."""

_HEX = re.compile(r"[0-9a-f]*")
_MASK32 = 0xFFFFFFFF

try:
    from fnv_hash_fast import fnv1a_32 as _fnv1a_32
except ImportError:  # pragma: no cover - a dependency; the Python loop stands in
    _C_FNV: Callable[[bytes], int] | None = None
else:
    # The package falls back to a pure-Python function where its extension did
    # not build; that one is slower than this module's own loop, so only the
    # compiled function is used.
    _C_FNV = _fnv1a_32 if isinstance(_fnv1a_32, types.BuiltinFunctionType) else None


# --------------------------------------------------------------------- hashes


def _fnv_update(h: int, units: bytes | array.array[int]) -> int:
    for c in units:
        h = ((h ^ c) * 16777619) & _MASK32
    return h


def _fnv_final(h: int) -> int:
    h ^= h >> 16
    h = (h * 2246822507) & _MASK32
    h ^= h >> 13
    h = (h * 3266489909) & _MASK32
    return h ^ (h >> 16)


def _utf16_units(text: str) -> array.array[int]:
    # One C-level conversion: a list built unit by unit cost 0.9 ms of a
    # 1.4 ms hash of an E3 proof (every solve checks its answer with it).
    units = array.array("H", text.encode("utf-16-le", "surrogatepass"))
    if sys.byteorder == "big":
        units.byteswap()
    return units


_FNV_OFFSET = 2166136261


def fnv1a_hex(text: str) -> str:
    """The E3 hash: FNV-1a over UTF-16 code units + murmur3 finaliser, 8 hex."""
    if _C_FNV is not None and text.isascii():  # ASCII: its bytes are its code units
        return f"{_fnv_final(_C_FNV(text.encode('ascii'))):08x}"
    return _fnv1a_hex_py(text)


def _fnv1a_hex_py(text: str) -> str:
    return f"{_fnv_final(_fnv_update(_FNV_OFFSET, _utf16_units(text))):08x}"


def hash_hex(text: str, hash: HashName) -> str:
    """``HASH(text)`` as lowercase hex, as the web client computes it."""
    if hash == "sha3":
        return hashlib.sha3_512(js_utf8(text)).hexdigest()
    return fnv1a_hex(text)


# ---------------------------------------------------------------- difficulty


def _check_difficulty(difficulty: str) -> None:
    if not _HEX.fullmatch(difficulty):
        raise UpstreamUnavailable(f"malformed proof-of-work difficulty: {difficulty[:40]!r}")


def is_too_hard(difficulty: str, limit: str = DEFAULT_DIFFICULTY_LIMIT) -> bool:
    """Whether chat2api refuses to solve ``difficulty`` (spec 3.3, last bullet).

    A difficulty ``d`` of length ``L`` accepts a hash iff its first ``L`` hex
    digits read as a number are ``<= int(d, 16)``: a fraction
    ``(int(d, 16) + 1) / 16**L`` of all hashes. ``d`` is too hard iff that
    fraction is ``<=`` the limit's. For equal lengths this is exactly the
    string comparison ``d <= limit`` chat2api makes; for different lengths it
    compares the real work instead of the characters (``"00003"`` is not
    harder than ``"000032"`` just because it sorts first). Exact integer
    arithmetic. Raises ``UpstreamUnavailable`` for a non-hex difficulty.
    """
    _check_difficulty(difficulty)
    if not _HEX.fullmatch(limit):
        raise ValueError(f"difficulty limit must be lowercase hex: {limit!r}")
    d_accept = int(difficulty or "0", 16) + 1
    l_accept = int(limit or "0", 16) + 1
    # a / 16**m <= b / 16**n  without fractions (16**k == 1 << 4k)
    return d_accept << (4 * len(limit)) <= l_accept << (4 * len(difficulty))


def _sha3_bound(difficulty: str) -> bytes:
    # hex[:L] <= d  <=>  digest <= fromhex(d, padded to whole bytes with "f") + ff…
    # (an L beyond 128 only compares the 128 hex digits there are).
    d = difficulty[:128]
    if len(d) % 2:
        d += "f"
    bound = bytes.fromhex(d)
    return bound + b"\xff" * (64 - len(bound))


def _fnv_bound(difficulty: str) -> int:
    # hex[:L] <= d  <=>  h < (int(d[:8]) + 1) << 4 * (8 - L')  with L' = min(L, 8)
    d = difficulty[:8]
    return (int(d or "0", 16) + 1) << (4 * (8 - len(d)))


def _passes(hex_digest: str, difficulty: str) -> bool:
    """The spec's rule, literally: a lexicographic compare of hex strings."""
    return hex_digest[: len(difficulty)] <= difficulty


# -------------------------------------------------------------------- tokens


def _token(enc: str, hash: HashName) -> str:
    return PROOF_PREFIX + enc + (FNV_SUFFIX if hash == "fnv" else "")


def give_up_token(seed: str, hash: HashName) -> str:
    """The token a browser sends after an exhausted search (spec 3.3).

    Provided for simulators and tests; chat2api never sends it.
    """
    if hash == "fnv":
        return _token(GIVE_UP_MARKER + encode_config_value("e"), hash)
    return _token(GIVE_UP_MARKER + encode_config_value(seed), hash)


def encode_config_value(value: Any) -> str:
    """base64(JSON(value)) for any JSON value."""
    return base64.b64encode(js_utf8(js_json(value))).decode("ascii")


def verify_proof(seed: str, difficulty: str, token: str, *, hash: HashName) -> bool:
    """The server's check of spec 3.4 (steps 1-4); give-up tokens fail."""
    if not token.startswith(PROOF_PREFIX):
        return False
    body = token[len(PROOF_PREFIX) :].removesuffix(FNV_SUFFIX)
    if body.startswith(GIVE_UP_MARKER):
        return False
    return _passes(hash_hex(seed + body, hash), difficulty)


# ------------------------------------------------------------------ solvers


def solve_reference(
    seed: str,
    difficulty: str,
    config: list[Any],
    *,
    hash: HashName = "sha3",
    max_attempts: int = 500_000,
) -> str:
    """The spec's loop, one full hash per nonce; reproduces spec 3.5 exactly.

    Only index 3 changes (index 9 keeps the caller's value, as in the worked
    examples). After ``max_attempts`` it raises ``ProofOfWorkTimeout``
    instead of building the give-up token the browser would send.
    """
    _check_difficulty(difficulty)
    candidate = list(config)
    for nonce in range(max_attempts):
        candidate[3] = nonce
        enc = encode_config(candidate)
        if _passes(hash_hex(seed + enc, hash), difficulty):
            return _token(enc, hash)
    raise ProofOfWorkTimeout(f"no proof of work within {max_attempts} attempts")


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Outcome of :func:`search`: the token, or ``None`` when time ran out."""

    token: str | None
    attempts: int
    seconds: float


class _Tails:
    """The base64 tails of the current window, built on first use and kept.

    The first pass over a remainder's row builds it while the search walks
    it, so an easy challenge (a few dozen attempts, answered in the first
    row) pays for the tails it tried, not for three windows of them.
    """

    __slots__ = ("_layout", "_rows", "first")

    def __init__(self, layout: ConfigLayout) -> None:
        self._layout = layout
        self._rows: list[list[bytes] | None] = [None, None, None]
        self.first = -1

    def window(self, first: int) -> None:
        if first != self.first:
            self.first = first
            self._rows = [None, None, None]

    def row(self, r: int) -> Iterable[bytes]:
        row = self._rows[r]
        return self._build(r) if row is None else row

    def _build(self, r: int) -> Iterator[bytes]:
        # base64 of ``<last r bytes of mid> + str(e) + tail`` for the window's e.
        b64 = binascii.b2a_base64
        built: list[bytes] = []
        mid, tail = self._layout.mid, self._layout.tail
        lead = mid[len(mid) - r :]
        for e in range(self.first, self.first + WINDOW):
            encoded = b64(b"%b%d%b" % (lead, e, tail), newline=False)
            built.append(encoded)
            yield encoded
        self._rows[r] = built  # only a row walked to its end is kept


def search(
    seed: str,
    difficulty: str,
    config: list[Any] | ConfigLayout,
    *,
    hash: HashName = "sha3",
    time_budget: float,
    clock: Callable[[], float] = time.monotonic,
) -> SearchResult:
    """Find a proof token, counting attempts; ``token=None`` after ``time_budget`` s.

    ``config`` (an array of at least 10 elements, or its layout) has its
    index 3 and 9 replaced by the nonce and an elapsed-ms value near the real
    one. Blocking.
    """
    _check_difficulty(difficulty)
    layout = config if isinstance(config, ConfigLayout) else ConfigLayout.of(config)
    start = clock()
    deadline = start + time_budget
    if hash == "sha3":
        found, attempts = _search_sha3(seed, difficulty, layout, start, deadline, clock)
    elif _C_FNV is not None and seed.isascii():
        found, attempts = _search_fnv_c(_C_FNV, seed, difficulty, layout, start, deadline, clock)
    else:
        found, attempts = _search_fnv(seed, difficulty, layout, start, deadline, clock)
    seconds = clock() - start
    if found is None:
        return SearchResult(None, attempts, seconds)
    enc = binascii.b2a_base64(layout.json(*found), newline=False).decode("ascii")
    if not _passes(hash_hex(seed + enc, hash), difficulty):  # pragma: no cover
        raise AssertionError("fast solver produced an answer the reference rejects")
    return SearchResult(_token(enc, hash), attempts, seconds)


def _search_sha3(
    seed: str,
    difficulty: str,
    layout: ConfigLayout,
    start: float,
    deadline: float,
    clock: Callable[[], float],
) -> tuple[tuple[int, int] | None, int]:
    b64 = base64.b64encode
    bound = _sha3_bound(difficulty)
    head, mid = layout.head, layout.mid
    cut = len(head) - len(head) % 3
    base = hashlib.sha3_512(js_utf8(seed) + b64(head[:cut]))
    head_rest = head[cut:]
    tails = _Tails(layout)
    attempts = 0
    nonce = 0
    while True:
        now = clock()
        if now >= deadline:
            return None, attempts
        tails.window(int((now - start) * 1000) // WINDOW * WINDOW)
        prefix = head_rest + str(nonce).encode() + mid
        r = len(prefix) % 3
        state = base.copy()
        state.update(b64(prefix[: len(prefix) - r]))
        for i, tail in enumerate(tails.row(r)):
            h = state.copy()
            h.update(tail)
            if h.digest() <= bound:
                return (nonce, tails.first + i), attempts + i + 1
        attempts += WINDOW
        nonce += 1


def _search_fnv(
    seed: str,
    difficulty: str,
    layout: ConfigLayout,
    start: float,
    deadline: float,
    clock: Callable[[], float],
) -> tuple[tuple[int, int] | None, int]:
    # Same layout as SHA3; the hash state is a plain int. base64 is ASCII,
    # so its bytes are its UTF-16 code units.
    b64 = base64.b64encode
    bound = _fnv_bound(difficulty)
    head, mid = layout.head, layout.mid
    cut = len(head) - len(head) % 3
    base = _fnv_update(_fnv_update(_FNV_OFFSET, _utf16_units(seed)), b64(head[:cut]))
    head_rest = head[cut:]
    tails = _Tails(layout)
    attempts = 0
    nonce = 0
    while True:
        now = clock()
        if now >= deadline:
            return None, attempts
        tails.window(int((now - start) * 1000) // WINDOW * WINDOW)
        prefix = head_rest + str(nonce).encode() + mid
        r = len(prefix) % 3
        state = _fnv_update(base, b64(prefix[: len(prefix) - r]))
        for i, tail in enumerate(tails.row(r)):
            h = state
            for c in tail:
                h = ((h ^ c) * 16777619) & _MASK32
            h ^= h >> 16
            h = (h * 2246822507) & _MASK32
            h ^= h >> 13
            h = (h * 3266489909) & _MASK32
            if h ^ (h >> 16) < bound:
                return (nonce, tails.first + i), attempts + i + 1
        attempts += WINDOW
        nonce += 1


def _search_fnv_c(
    fnv1a_32: Callable[[bytes], int],
    seed: str,
    difficulty: str,
    layout: ConfigLayout,
    start: float,
    deadline: float,
    clock: Callable[[], float],
) -> tuple[tuple[int, int] | None, int]:
    # _search_fnv with the whole ``seed + enc`` hashed in C per attempt (an
    # ASCII seed: bytes are code units); the same candidates in the same order.
    # _fnv_final is written out: an easy proof is a few dozen attempts, and
    # the call was a fifth of each.
    b64 = binascii.b2a_base64
    bound = _fnv_bound(difficulty)
    head, mid = layout.head, layout.mid
    cut = len(head) - len(head) % 3
    base = seed.encode("ascii") + b64(head[:cut], newline=False)
    head_rest = head[cut:]
    tails = _Tails(layout)
    attempts = 0
    nonce = 0
    while True:
        now = clock()
        if now >= deadline:
            return None, attempts
        tails.window(int((now - start) * 1000) // WINDOW * WINDOW)
        prefix = b"%b%d%b" % (head_rest, nonce, mid)
        r = len(prefix) % 3
        state = base + b64(prefix[: len(prefix) - r], newline=False)
        for i, tail in enumerate(tails.row(r)):
            h = fnv1a_32(state + tail)
            h ^= h >> 16
            h = (h * 2246822507) & 0xFFFFFFFF
            h ^= h >> 13
            h = (h * 3266489909) & 0xFFFFFFFF
            if h ^ (h >> 16) < bound:
                return (nonce, tails.first + i), attempts + i + 1
        attempts += WINDOW
        nonce += 1


def solve(
    seed: str,
    difficulty: str,
    config: list[Any],
    *,
    hash: HashName = "sha3",
    time_budget: float,
) -> str:
    """The proof token for ``seed``/``difficulty``; blocking.

    Raises ``ProofOfWorkTimeout`` when ``time_budget`` seconds pass without
    an answer (never the browser's give-up token), ``UpstreamUnavailable``
    for a malformed difficulty. Refusing too-hard difficulties is the
    caller's choice: see :func:`is_too_hard`.
    """
    result = search(seed, difficulty, config, hash=hash, time_budget=time_budget)
    if result.token is None:
        raise ProofOfWorkTimeout(
            f"no proof of work for difficulty {difficulty} within {time_budget:g}s "
            f"({result.attempts} attempts)"
        )
    return result.token
