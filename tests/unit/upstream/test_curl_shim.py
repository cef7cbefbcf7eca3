"""The curl_cffi internals ``upstream/curl.py`` uses are there and do what it says."""

from __future__ import annotations

import asyncio
import http.server
import importlib.metadata
import threading
import tomllib
from collections.abc import Iterator
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


class _TwoCookies(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"two cookies"
        self.send_response(201)
        self.send_header("Set-Cookie", "alpha=1")
        self.send_header("X-Mixed-Case", "Value: with colon")
        self.send_header("Set-Cookie", "beta=2")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def two_cookies_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TwoCookies)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_headers_read_from_libcurl_without_a_header_callback(two_cookies_url: str) -> None:
    """With the header callback unset, the body is the body alone and the final status and
    headers (repeats, order, case) are read from libcurl; set again, the callback gets the
    lines, and libcurl still keeps them."""
    handle = Curl()
    try:
        lines: list[bytes] = []
        body: list[bytes] = []
        handle.setopt(CurlOpt.WRITEFUNCTION, lambda chunk: body.append(chunk) or len(chunk))
        handle.setopt(CurlOpt.HEADERFUNCTION, lambda line: lines.append(line) or len(line))
        function, data = curl.header_callback(handle)
        easy = curl.easy_handle(handle)
        raw = curl.headers_handle(handle)
        code = curl.long_param(0)
        assert curl.response_headers(raw) == []
        assert curl.response_code(easy, code) == 0
        handle.setopt(CurlOpt.URL, two_cookies_url)
        assert curl.easy_setopt(easy, CurlOpt.HEADERFUNCTION, curl.NULL) == 0
        assert curl.easy_setopt(easy, CurlOpt.HEADERDATA, curl.NULL) == 0
        handle.perform()
        assert lines == []
        assert b"".join(body) == b"two cookies"
        assert curl.response_code(easy, code) == 201
        headers = curl.response_headers(raw)
        assert [kv for kv in headers if kv[0] in ("Set-Cookie", "X-Mixed-Case")] == [
            ("Set-Cookie", "alpha=1"),
            ("X-Mixed-Case", "Value: with colon"),
            ("Set-Cookie", "beta=2"),
        ]
        body.clear()
        # Curl.perform (not used by the transport) drops curl_cffi's callback handles;
        # the write callback is bound again, the header one comes from the pair kept.
        handle.setopt(CurlOpt.WRITEFUNCTION, lambda chunk: body.append(chunk) or len(chunk))
        assert curl.easy_setopt(easy, CurlOpt.HEADERFUNCTION, function) == 0
        assert curl.easy_setopt(easy, CurlOpt.HEADERDATA, data) == 0
        handle.perform()
        assert lines[0].startswith(b"HTTP/1.0 201") and b"Set-Cookie: beta=2\r\n" in lines
        assert b"".join(body) == b"two cookies"
        assert curl.response_headers(raw) == headers
    finally:
        handle.close()
