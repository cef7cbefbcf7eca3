"""The curl_cffi internals ``upstream/curl.py`` uses are there and do what it says."""

from __future__ import annotations

import asyncio
import importlib.metadata
import tomllib
from pathlib import Path

import pytest
from curl_cffi import Curl, CurlError, CurlInfo, CurlMOpt, CurlOpt
from curl_cffi.aio import AsyncCurl

from chat2api.upstream import curl

PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"
CURLE_UNKNOWN_OPTION = 48
CURLM_UNKNOWN_OPTION = 6


def test_the_pin_names_the_installed_minor() -> None:
    """pyproject pins curl_cffi to the minor version installed (the one the shim was checked on)."""
    major, minor, *_ = importlib.metadata.version("curl_cffi").split(".")
    wanted = f"curl_cffi>={major}.{minor}.0,<{major}.{int(minor) + 1}"
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    assert wanted in dependencies


def test_easy_setopt_reaches_libcurl() -> None:
    """An option set through the raw handle is the one libcurl uses; a bad one is refused."""
    handle = Curl()
    try:
        easy = curl.easy_handle(handle)
        assert curl.easy_setopt(easy, CurlOpt.URL, b"http://127.0.0.1:9/shim") == 0
        assert curl.easy_setopt(easy, CurlOpt.CONNECTTIMEOUT_MS, curl.long_param(2000)) == 0
        assert curl.easy_setopt(easy, 99999, curl.long_param(1)) == CURLE_UNKNOWN_OPTION
        slist = curl.header_list([b"X-Shim: 1", b"Accept: */*"])
        assert slist != curl.NULL
        assert curl.easy_setopt(easy, CurlOpt.HTTPHEADER, slist) == 0
        with pytest.raises(CurlError):  # nothing listens on port 9 (discard)
            handle.perform()
        assert handle.getinfo(CurlInfo.EFFECTIVE_URL) == b"http://127.0.0.1:9/shim"
        assert curl.easy_setopt(easy, CurlOpt.HTTPHEADER, curl.NULL) == 0
        curl.free_header_list(slist)
        assert curl.header_list([]) == curl.NULL
    finally:
        handle.close()


def test_multi_setopt_long_sets_a_limit() -> None:
    """A long multi option is accepted by value; an unknown one is refused."""

    async def run() -> tuple[int, int]:
        acurl = AsyncCurl(loop=asyncio.get_running_loop())
        try:
            return (
                curl.multi_setopt_long(acurl, CurlMOpt.MAXCONNECTS, 5),
                curl.multi_setopt_long(acurl, 99999, 5),  # type: ignore[arg-type]
            )
        finally:
            await acurl.close()  # type: ignore[no-untyped-call]

    assert asyncio.run(run()) == (0, CURLM_UNKNOWN_OPTION)


def test_real_target_resolves_a_browser_alias() -> None:
    """ "chrome" names a versioned target of this release; a versioned name stays itself."""
    target = curl.real_target("chrome")
    assert target.startswith("chrome") and target != "chrome"
    assert curl.real_target(target) == target
    handle = Curl()
    try:
        assert handle.impersonate(target, default_headers=False) == 0  # libcurl knows it
    finally:
        handle.close()
