"""The browser fingerprint behind the sentinel config array (spec 3.1).

A :class:`BrowserProfile` is one simulated page load: what ``navigator``,
``screen`` and ``performance`` would report, plus the script URL and build id
harvested from the home page (spec 1.2). :func:`build_config` turns it into
the 18-element E2 config array at a given moment, or the 25-element E3 one. Keep one profile per
account for a while rather than a fresh random one per request: a real
browser's values do not change between sends.

The user agent must be the one the HTTP client sends; :data:`DEFAULT_USER_AGENT`
is exactly what curl_cffi sends when impersonating :data:`IMPERSONATE_TARGET`
(pinned, because curl_cffi's bare ``"chrome"`` alias moves between releases).
"""

from __future__ import annotations

import functools
import math
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

from chat2api.sentinel.jsjson import js_json, js_utf8
from chat2api.sentinel.tokens import ConfigLayout

__all__ = [
    "DEFAULT_USER_AGENT",
    "E3_HEAP_LIMIT",
    "E3_PROBES",
    "IMPERSONATE_TARGET",
    "SDK_SCRIPT_FALLBACK",
    "BrowserProfile",
    "ConfigTemplate",
    "PageAssets",
    "build_config",
    "js_date_string",
    "parse_home_page",
]

IMPERSONATE_TARGET = "chrome152"
"""curl_cffi ``impersonate=`` value whose User-Agent equals DEFAULT_USER_AGENT."""

DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/152.0.0.0 Safari/537.36"
)

E3_HEAP_LIMIT = 4294967296
"""``performance.memory.jsHeapSizeLimit`` of the 2026 browsers (config index 2)."""
E3_PROBES = 7
"""Trailing ``Number("X" in window)`` probes of the 25-element E3 config."""

SDK_SCRIPT_FALLBACK = "https://chatgpt.com/backend-api/sentinel/sdk.js"
"""Script URL used when the home page yields none (what later forks do)."""

# Values a Chrome page really reports; random profiles pick from these.
_SCREEN_SUMS = (3000, 2880, 2160, 2400, 3840, 4000, 2048)  # width + height
_CORES = (4, 8, 12, 16, 20)
_NAVIGATOR_KEYS = (
    "webdriver−false",
    "vendor−Google Inc.",
    "cookieEnabled−true",
    "pdfViewerEnabled−true",
    "hardwareConcurrency−8",
    "language−en-US",
    "onLine−true",
    "maxTouchPoints−0",
)
_DOCUMENT_KEYS = ("location", "_reactListeningj3rmi50kcy", "__reactContainer$0yx1qgmhmb5")
_WINDOW_KEYS = ("onfocus", "__NEXT_DATA__", "webpackChunk_N_E", "__oai_SSR_HTML", "chrome")


@dataclass(frozen=True, slots=True)
class PageAssets:
    """What ``GET /`` tells the PoW config: script URLs and the build id."""

    scripts: tuple[str, ...] = ()
    build_id: str | None = None
    # E3 headers: ``OAI-Client-Version`` (the ``data-build`` value, ``prod-<sha>``)
    # and ``OAI-Client-Build-Number`` (an integer string), when the page shows them.
    client_version: str | None = None
    build_number: str | None = None


_SCRIPT_SRC = re.compile(r"""<script\b[^>]*?\bsrc\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_NEXT_BUILD = re.compile(r"c/[^/]*/_")
_DATA_BUILD = re.compile(r"""<html\b[^>]*?\bdata-build\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
# Where a page may name its build number: an attribute, or a key of embedded JSON.
_BUILD_NUMBER = re.compile(
    r"""data-build-number\s*=\s*["'](\d{1,12})["']|"(?:buildNumber|build_number)"\s*:\s*"?(\d{1,12})""",
    re.IGNORECASE,
)


def parse_home_page(html: str) -> PageAssets:
    """Harvest script URLs and the build id from the home page (spec 1.2).

    The build id is ``c/<id>/_`` when a script URL has that shape (Next.js
    era), else the ``<html data-build="prod-…">`` attribute, else ``None``.
    """
    scripts = tuple(dict.fromkeys(_SCRIPT_SRC.findall(html)))
    build_id: str | None = None
    for src in scripts:
        match = _NEXT_BUILD.search(src)
        if match:
            build_id = match.group()
            break
    data_build = _DATA_BUILD.search(html)
    client_version = data_build.group(1) if data_build else None
    if build_id is None:
        build_id = client_version
    number = _BUILD_NUMBER.search(html)
    build_number = (number.group(1) or number.group(2)) if number else None
    return PageAssets(
        scripts=scripts, build_id=build_id, client_version=client_version, build_number=build_number
    )


def _now_ms() -> float:
    # performance.timeOrigin has sub-millisecond digits; keep one like Chrome.
    return round(time.time() * 1000, 1)


@dataclass(frozen=True, slots=True)
class BrowserProfile:
    """One simulated Chrome page load; every field maps to a config index."""

    user_agent: str = DEFAULT_USER_AGENT  # [4]
    screen_sum: int = 3000  # [0] screen.width + screen.height
    heap_limit: int = 4294705152  # [2] performance.memory.jsHeapSizeLimit
    language: str = "en-US"  # [7]
    languages: tuple[str, ...] = ("en-US", "en")  # [8]
    hardware_concurrency: int = 8  # [16]
    sid: str = field(default_factory=lambda: str(uuid.uuid4()))  # [14]
    time_origin: float = field(default_factory=_now_ms)  # [17] ms since epoch
    script_src: str = SDK_SCRIPT_FALLBACK  # [5]
    build_id: str | None = None  # [6]
    navigator_key: str = "webdriver−false"  # [10] "<key>−<value>", U+2212
    document_key: str = "location"  # [11]
    window_key: str = "onfocus"  # [12]
    search_keys: str = ""  # [15] location.search keys joined by ","
    utc_offset_minutes: int = -480  # for [1], east of UTC positive
    timezone_name: str = "Pacific Standard Time"  # for [1]

    @classmethod
    def random(
        cls,
        rng: random.Random | None = None,
        *,
        assets: PageAssets | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> BrowserProfile:
        """A plausible profile with the varying parts drawn from ``rng``."""
        rng = rng or random.Random()
        cores = rng.choice(_CORES)
        script = rng.choice(assets.scripts) if assets and assets.scripts else SDK_SCRIPT_FALLBACK
        navigator_key = rng.choice(_NAVIGATOR_KEYS)
        if navigator_key.startswith("hardwareConcurrency"):
            navigator_key = f"hardwareConcurrency−{cores}"
        return cls(
            user_agent=user_agent,
            screen_sum=rng.choice(_SCREEN_SUMS),
            hardware_concurrency=cores,
            sid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            time_origin=_now_ms() - rng.randint(2_000, 600_000),
            script_src=script,
            build_id=assets.build_id if assets else None,
            navigator_key=navigator_key,
            document_key=rng.choice(_DOCUMENT_KEYS),
            window_key=rng.choice(_WINDOW_KEYS),
        )


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def js_date_string(epoch_seconds: float, utc_offset_minutes: int, timezone_name: str) -> str:
    """``"" + new Date()`` in Chrome, e.g. ``Mon Jan 05 2026 10:00:00 GMT-0800 (…)``.

    Built by hand because ``strftime`` names follow the C locale. The string
    shows whole seconds (the fraction is dropped, as JavaScript does), so it
    is made once per second and profile, not per request (3.4 µs each).
    """
    return _date_string(math.floor(epoch_seconds), utc_offset_minutes, timezone_name)


@functools.lru_cache(maxsize=64)
def _date_string(epoch_seconds: int, utc_offset_minutes: int, timezone_name: str) -> str:
    tz = timezone(timedelta(minutes=utc_offset_minutes))
    t = datetime.fromtimestamp(epoch_seconds, UTC).astimezone(tz)
    sign = "+" if utc_offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(utc_offset_minutes), 60)
    return (
        f"{_WEEKDAYS[t.weekday()]} {_MONTHS[t.month - 1]} {t.day:02d} {t.year} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} "
        f"GMT{sign}{hours:02d}{minutes:02d} ({timezone_name})"
    )


def build_config(
    profile: BrowserProfile,
    *,
    now: float | None = None,
    nonce: int = 1,
    elapsed_ms: int = 0,
    era: Literal["e2", "e3"] = "e2",
) -> list[Any]:
    """The config array of spec 3.1 for ``profile`` at ``now``.

    E2: 18 elements. E3: the 2026 browser's 25 (heap limit ``4294967296`` at
    index 2, then seven ``"X" in window`` probes, all ``0``).

    ``now`` is epoch seconds (default: the current time). Index 3 (nonce) and
    index 9 (elapsed ms) get ``nonce`` and ``elapsed_ms``; the solver
    overwrites both. Floats are kept only where a browser reports fractions
    (index 13, 17); serialise with :func:`~chat2api.sentinel.jsjson.js_json`.
    """
    if now is None:
        now = time.time()
    performance_now = max(0.0, round(now * 1000 - profile.time_origin, 1))
    config = [
        profile.screen_sum,
        js_date_string(now, profile.utc_offset_minutes, profile.timezone_name),
        E3_HEAP_LIMIT if era == "e3" else profile.heap_limit,
        nonce,
        profile.user_agent,
        profile.script_src,
        profile.build_id,
        profile.language,
        ",".join(profile.languages),
        elapsed_ms,
        profile.navigator_key,
        profile.document_key,
        profile.window_key,
        performance_now,
        profile.sid,
        profile.search_keys,
        profile.hardware_concurrency,
        profile.time_origin,
    ]
    if era == "e3":
        config.extend([0] * E3_PROBES)
    return config


@functools.lru_cache(maxsize=256)
def _json_bytes(text: str) -> bytes:  # a page's script URLs, the date of this second
    return js_utf8(js_json(text))


class ConfigTemplate:
    """:func:`build_config` of one profile as JSON pieces, for its :class:`ConfigLayout`.

    Only the date string (index 1, per second), ``performance.now()`` (13) and
    the script URL (5, the caller's pick per request) change between a
    profile's requests; the rest is encoded once here. ``layout`` gives the
    bytes ``ConfigLayout.of(build_config(profile, now=now, era=era))`` gives,
    with ``script_src`` in place of the profile's.
    """

    __slots__ = ("_heap", "_lead", "_mid_a", "_mid_b", "_tail_a", "_tail_b", "era", "profile")

    def __init__(self, profile: BrowserProfile, *, era: Literal["e2", "e3"] = "e2") -> None:
        self.profile = profile
        self.era = era
        parts = [js_utf8(js_json(v)) for v in build_config(profile, now=0.0, era=era)]
        self._lead = b"[" + parts[0] + b","
        self._heap = b"," + parts[2] + b","
        self._mid_a = b"," + parts[4] + b","
        self._mid_b = b"," + b",".join(parts[6:9]) + b","
        self._tail_a = b"," + b",".join(parts[10:13]) + b","
        self._tail_b = b"".join([b"," + p for p in parts[14:]]) + b"]"

    def layout(self, script_src: str | None = None, *, now: float | None = None) -> ConfigLayout:
        """The config's layout at ``now`` (default: the current time)."""
        if now is None:
            now = time.time()
        profile = self.profile
        date = js_date_string(now, profile.utc_offset_minutes, profile.timezone_name)
        performance_now = max(0.0, round(now * 1000 - profile.time_origin, 1))
        script = _json_bytes(profile.script_src if script_src is None else script_src)
        performance = repr(performance_now)
        if "e" in performance or "n" in performance:  # not positional (nor a finite repr)
            performance = js_json(performance_now)
        return ConfigLayout(
            b"%b%b%b" % (self._lead, _json_bytes(date), self._heap),
            b"%b%b%b" % (self._mid_a, script, self._mid_b),
            b"%b%s%b" % (self._tail_a, performance.removesuffix(".0").encode(), self._tail_b),
        )
