"""The curl_cffi internals ``upstream/curl.py`` uses are there and do what it says."""

from __future__ import annotations

import importlib.metadata
import time
import tomllib
from pathlib import Path

import pytest
from curl_cffi import Curl, CurlError, CurlInfo, CurlMOpt, CurlOpt

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
    multi = curl.multi_init()
    try:
        assert curl.multi_setopt_long(multi, CurlMOpt.MAXCONNECTS, 5) == 0
        assert curl.multi_setopt_long(multi, 99999, 5) == CURLM_UNKNOWN_OPTION  # type: ignore[arg-type]
    finally:
        assert curl.multi_cleanup(multi) == 0


def test_multi_callbacks_drive_a_transfer() -> None:
    """The socket callback is called, curl_multi_timeout gives libcurl's deadline,
    socket_action runs a transfer to its message, and a failed transfer's error reads
    as curl_cffi's."""
    handle = Curl()
    multi = curl.multi_init()
    calls: list[str] = []
    sockets: dict[int, int] = {}

    def on_socket(easy: object, fd: int, what: int, clientp: object, socketp: object) -> int:
        calls.append(f"socket {what}")
        sockets[fd] = what
        return 0

    keep = curl.multi_callbacks(multi, on_socket)
    try:
        easy = curl.easy_handle(handle)
        curl.easy_setopt(easy, CurlOpt.URL, b"http://127.0.0.1:9/shim")  # refused at once
        running, left, due = curl.int_out(), curl.int_out(), curl.long_out()
        assert curl.multi_timeout(multi, due) == 0
        assert due[0] == -1  # nothing to do
        assert curl.multi_add_handle(multi, easy) == 0
        assert curl.multi_timeout(multi, due) == 0
        assert due[0] == 0  # libcurl asks to be run at once
        message = curl.NULL
        for _ in range(3000):
            for fd in [fd for fd, what in sockets.items() if what != 4] or [-1]:
                assert curl.multi_socket_action(multi, fd, 0, running) == 0  # 0: libcurl looks
            message = curl.multi_info_read(multi, left)
            if message != curl.NULL:
                break
            assert curl.multi_timeout(multi, due) == 0
            time.sleep(0.001)  # the connect's refusal, polled
        assert message != curl.NULL and message.msg == 1  # CURLMSG_DONE
        assert message.easy_handle == easy and running[0] == 0
        assert "socket 2" in calls  # the connect waits for the socket to be writable
        error = curl.transfer_error(handle, message.data.result)
        assert isinstance(error, CurlError) and error.code == 7  # CURLE_COULDNT_CONNECT
        assert curl.multi_remove_handle(multi, easy) == 0
    finally:
        curl.multi_cleanup(multi)
        handle.close()
    del keep


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


def test_easy_callbacks_receive_headers_and_body_and_report_errors(tmp_path: Path) -> None:
    """Our write and header callbacks get each line and chunk as bytes; one that raises
    fails the transfer with a write error and hands its exception over."""
    source = tmp_path / "body.txt"
    source.write_bytes(b"hello file")
    handle = Curl()
    seen: list[tuple[str, bytes]] = []
    errors: list[BaseException] = []

    def on_body(data: object, size: int, length: int, userdata: object) -> int:
        seen.append(("body", curl.unpack(data, length)))
        return length

    def on_header(data: object, size: int, length: int, userdata: object) -> int:
        seen.append(("header", curl.unpack(data, length)))
        return length

    def broken(data: object, size: int, length: int, userdata: object) -> int:
        raise ValueError("broken reader")

    try:
        easy = curl.easy_handle(handle)
        keep = curl.easy_callbacks(easy, on_body, on_header, errors.append)
        assert curl.easy_setopt(easy, CurlOpt.URL, source.as_uri().encode()) == 0
        handle.perform()
        assert seen[0] == ("header", b"Content-Length: 10\r\n")
        assert seen[-2:] == [("header", b"\r\n"), ("body", b"hello file")]
        uploaded = curl.offset_out()
        assert curl.easy_getinfo(easy, CurlInfo.SIZE_UPLOAD_T, uploaded) == 0
        assert uploaded[0] == 0
        keep = curl.easy_callbacks(easy, broken, on_header, errors.append)
        with pytest.raises(CurlError) as failed:
            handle.perform()
        assert failed.value.code == 23  # CURLE_WRITE_ERROR
        assert [str(error) for error in errors] == ["broken reader"]
        assert "(23)" in str(curl.transfer_error(handle, 23))
        del keep
    finally:
        handle.close()
