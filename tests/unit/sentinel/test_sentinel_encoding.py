"""JS-compatible serialisation, config arrays and the requirements token."""

from __future__ import annotations

import base64
import json
import math
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat2api.sentinel.config import (
    DEFAULT_USER_AGENT,
    IMPERSONATE_TARGET,
    SDK_SCRIPT_FALLBACK,
    BrowserProfile,
    PageAssets,
    build_config,
    js_date_string,
    parse_home_page,
)
from chat2api.sentinel.jsjson import js_json, js_number, js_utf8
from chat2api.sentinel.tokens import decode_token, encode_config, requirements_token

REQUIREMENTS_B = (
    "gAAAAACWzMwMDAsIk1vbiBKYW4gMDUgMjAyNiAxMDowMDowMCBHTVQtMDgwMCAoUGFjaWZpYyBTdGFuZGFyZCBUaW1lKSIs"
    "NDI5NDk2NzI5NiwxLCJNb3ppbGxhLzUuMCAoV2luZG93cyBOVCAxMC4wOyBXaW42NDsgeDY0KSBBcHBsZVdlYktpdC81Mzcu"
    "MzYgKEtIVE1MLCBsaWtlIEdlY2tvKSBDaHJvbWUvMTMxLjAuMC4wIFNhZmFyaS81MzcuMzYiLCJodHRwczovL2NoYXRncHQu"
    "Y29tL2JhY2tlbmQtYXBpL3NlbnRpbmVsL3Nkay5qcyIsInByb2QtMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYw"
    "MTIzNDU2NyIsImVuLVVTIiwiZW4tVVMsZW4iLDAsIndlYmRyaXZlcuKIkmZhbHNlIiwiX3JlYWN0TGlzdGVuaW5nYWJjMTIz"
    "ZGVmNDUiLCJvbmZvY3VzIiwxMjM0LjUsIjExMTExMTExLTIyMjItNDMzMy04NDQ0LTU1NTU1NTU1NTU1NSIsIiIsOCwxNzY3"
    "NjM2MDAwMTIzLjQsMCwwLDAsMCwwLDAsMF0=~S"
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1767636000000.0, "1767636000000"),
        (1767636000123.4, "1767636000123.4"),
        (1234.5, "1234.5"),
        (0.0, "0"),
        (-0.0, "0"),
        (-2.5, "-2.5"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1.5e16, "15000000000000000"),
        (123456789012345680000.0, "123456789012345680000"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (0.0001, "0.0001"),
        (2.5e-300, "2.5e-300"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (0.1 + 0.2, "0.30000000000000004"),
        (4294705152, "4294705152"),
        (2**53 + 1, "9007199254740992"),
        (10**21, "1e+21"),
        (math.nan, "NaN"),
        (-math.inf, "-Infinity"),
    ],
)
def test_js_number_matches_javascript(value: float, expected: str) -> None:
    """js_number prints like JavaScript's String(number)."""
    assert js_number(value) == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_js_number_round_trips(value: float) -> None:
    """Whatever layout is chosen, the text parses back to the same double."""
    assert float(js_number(value)) == value


def test_js_json_compact_utf8_and_js_numbers() -> None:
    """JSON.stringify layout: no spaces, UTF-8 kept, null for non-finite, JS numbers."""
    value = [3000, 1767636000000.0, "webdriver−false", None, True, {"a": 1.0}, math.inf]
    text = js_json(value)
    assert text == '[3000,1767636000000,"webdriver−false",null,true,{"a":1},null]'
    assert base64.b64encode(js_utf8("−")) == b"4oiS"  # kept as UTF-8, as spec 3.5 notes


def test_js_json_escapes_like_json_stringify() -> None:
    """Quotes, backslashes, control characters and lone surrogates are escaped as in JS."""
    assert js_json('a"b\\c\n\x01') == '"a\\"b\\\\c\\n\\u0001"'
    assert js_json("\ud800x") == '"\\ud800x"'
    assert js_json("\u2028") == '"\u2028"'
    with pytest.raises(TypeError):
        js_json(object())


def test_js_utf8_replaces_lone_surrogates() -> None:
    """Lone surrogates become U+FFFD like TextEncoder; pairs are joined."""
    assert js_utf8("a\ud800") == "a\ufffd".encode()
    assert js_utf8("\ud83d\ude00") == "😀".encode()


def test_default_user_agent_is_curl_cffi_chrome_windows() -> None:
    """The exported UA is a Windows Chrome UA whose version matches the impersonation target."""
    assert "Windows NT 10.0; Win64; x64" in DEFAULT_USER_AGENT
    version = IMPERSONATE_TARGET.removeprefix("chrome")
    assert f"Chrome/{version}.0.0.0 " in DEFAULT_USER_AGENT


def test_js_date_string_chrome_format() -> None:
    """The date string has Chrome's `"" + new Date()` shape in the profile's zone."""
    epoch = 1767636000  # 2026-01-05 18:00:00 UTC
    assert (
        js_date_string(epoch, -480, "Pacific Standard Time")
        == "Mon Jan 05 2026 10:00:00 GMT-0800 (Pacific Standard Time)"
    )
    assert js_date_string(epoch, 330, "India Standard Time").endswith(
        "23:30:00 GMT+0530 (India Standard Time)"
    )
    # Whole seconds, the fraction dropped as JavaScript's Date string does.
    assert js_date_string(epoch + 0.999, -480, "Pacific Standard Time").startswith(
        "Mon Jan 05 2026 10:00:00 "
    )
    assert js_date_string(epoch + 61.5, -480, "Pacific Standard Time").startswith(
        "Mon Jan 05 2026 10:01:01 "
    )


def test_build_config_layout() -> None:
    """build_config fills the 18 indices of spec 3.1 from the profile."""
    profile = BrowserProfile(
        sid="11111111-2222-4333-8444-555555555555",
        time_origin=1767636000123.4,
        script_src="https://cdn.oaistatic.com/assets/app-example.js",
        build_id="prod-0123456789abcdef0123456789abcdef01234567",
    )
    config = build_config(profile, now=1767636001.3579, nonce=7, elapsed_ms=3)
    assert len(config) == 18
    assert config[0] == 3000
    assert config[1] == "Mon Jan 05 2026 10:00:01 GMT-0800 (Pacific Standard Time)"
    assert config[3] == 7
    assert config[4] == DEFAULT_USER_AGENT
    assert config[5:9] == [profile.script_src, profile.build_id, "en-US", "en-US,en"]
    assert config[9] == 3
    assert config[10] == "webdriver\u2212false"
    assert config[13] == 1234.5
    assert config[14:] == [profile.sid, "", 8, 1767636000123.4]
    text = js_json(config)
    assert ".0," not in text and ".0]" not in text
    assert json.loads(text) == config


def test_random_profile_is_plausible() -> None:
    """Random profiles use the page's scripts and build id and a fixed UA."""
    assets = PageAssets(scripts=("https://cdn.example/a.js",), build_id="prod-abc")
    profile = BrowserProfile.random(random.Random(1), assets=assets)
    assert profile.script_src == "https://cdn.example/a.js"
    assert profile.build_id == "prod-abc"
    assert profile.user_agent == DEFAULT_USER_AGENT
    assert len(build_config(profile)) == 18
    assert BrowserProfile.random(random.Random(1)).script_src == SDK_SCRIPT_FALLBACK


def test_parse_home_page_data_build_and_scripts() -> None:
    """Scripts come from <script src>; the build id from data-build when no c/…/_ URL exists."""
    html = (
        '<html lang="en" data-build="prod-0123456789abcdef0123456789abcdef01234567">'
        '<script src="https://cdn.oaistatic.com/assets/a.js"></script>'
        "<script async src='https://cdn.oaistatic.com/assets/b.js'></script>"
        "<script>inline()</script></html>"
    )
    assets = parse_home_page(html)
    assert assets.scripts == (
        "https://cdn.oaistatic.com/assets/a.js",
        "https://cdn.oaistatic.com/assets/b.js",
    )
    assert assets.build_id == "prod-0123456789abcdef0123456789abcdef01234567"


def test_parse_home_page_next_build_id_and_nothing() -> None:
    """A Next.js script URL yields c/<id>/_; an empty page yields nothing."""
    html = '<script src="https://cdn.oaistatic.com/_next/static/c/AbC123/_buildManifest.js">'
    assert parse_home_page(html).build_id == "c/AbC123/_"
    assert parse_home_page("<html></html>") == PageAssets()


def test_requirements_token_matches_spec_example(config_b: list[Any]) -> None:
    """The 2026-style requirements token of spec 3.5 is reproduced byte for byte."""
    config_b[3] = 12345  # requirements_token sets it to 1 on a copy
    assert requirements_token(config_b, suffix="~S") == REQUIREMENTS_B
    assert config_b[3] == 12345


def test_requirements_token_e2_form_decodes(config_a: list[Any]) -> None:
    """The default token is gAAAAAC + base64 of the config with index 3 = 1, no suffix."""
    token = requirements_token(config_a)
    assert token.startswith("gAAAAAC") and not token.endswith("~S")
    decoded = decode_token(token)
    assert decoded[3] == 1
    assert decoded[:3] == config_a[:3] and decoded[4:] == config_a[4:]
    assert token[7:] == encode_config(decoded)


def test_decode_token_rejects_garbage() -> None:
    """decode_token raises ValueError for anything but a prefixed base64 JSON array."""
    for bad in ("xyz", "gAAAAAB!!!", "gAAAAAB" + base64.b64encode(b"{}").decode()):
        with pytest.raises(ValueError):
            decode_token(bad)
