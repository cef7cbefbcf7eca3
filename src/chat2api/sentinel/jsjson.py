"""``JSON.stringify`` as a browser does it, for the sentinel config array.

The proof-of-work hash covers the exact bytes of the serialised config, so
they must match what the web client would produce: compact separators,
non-ASCII kept as UTF-8, and numbers printed by ECMAScript's
``Number::toString`` (``1767636000000`` not ``1767636000000.0``, ``1e+21``
not ``1e21``, ``1e-7`` not ``1e-07``, ``100000000000000000`` not ``1e+17``).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

__all__ = ["js_json", "js_number", "js_utf8"]

_MAX_SAFE = 2**53
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def js_number(value: float) -> str:
    """``String(value)`` in JavaScript (``Number::toString(10)``).

    Python's ``repr`` already yields the shortest round-tripping digits, as
    JavaScript does; only the layout rules differ. ints are JS doubles too, so
    integers beyond 2**53 are printed as the double they round to.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if -_MAX_SAFE < value < _MAX_SAFE:
            return str(value)
        value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"  # JS prints -0 as "0" too
    sign = "-" if value < 0 else ""
    shortest = repr(abs(value))
    if "e" not in shortest:
        # repr is positional only for 1e-4 <= |value| < 1e16, where JS is
        # positional too with the same digits; only repr's ".0" differs.
        return sign + shortest.removesuffix(".0")
    _, digit_tuple, exponent = Decimal(shortest).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int)  # finite, checked above
    # value = 0.<digits> * 10**n  (ECMA-262 Number::toString, k = len(digits))
    n = exponent + len(digit_tuple)
    k = len(digits)
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * -n + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        body = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + body


@functools.lru_cache(maxsize=256)
def _js_string(value: str) -> str:
    # Cached: a config repeats its profile's strings (user agent, script,
    # build id, ...) on every request.
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return '"' + value + '"'  # nothing to escape: the common case, made cheap
    # json.dumps(ensure_ascii=False) escapes exactly what JSON.stringify does
    # (", \, control characters with lowercase \u00xx) except lone
    # surrogates, which well-formed JSON.stringify writes as \udxxx.
    text = json.dumps(value, ensure_ascii=False)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def js_json(value: Any) -> str:
    """``JSON.stringify(value)`` (no indentation) for JSON-like Python values."""
    # The config's own types first, by exact type (a bool is not an int here).
    kind = type(value)
    if kind is str:
        return _js_string(value)
    if kind is int and -_MAX_SAFE < value < _MAX_SAFE:
        return str(value)
    if kind is list:
        return "[" + ",".join([js_json(v) for v in value]) + "]"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _js_string(value)
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return "null"
        return js_number(value)
    if isinstance(value, Mapping):
        items = (f"{_js_string(str(k))}:{js_json(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(js_json(v) for v in value) + "]"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def js_utf8(text: str) -> bytes:
    """UTF-8 bytes as ``TextEncoder`` makes them (lone surrogates become U+FFFD)."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        # Re-pair surrogates, then replace the lone ones, as JS does.
        paired = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return paired.encode()
