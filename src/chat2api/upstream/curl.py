"""Every use of curl_cffi below its public API, in one place (written for curl_cffi 0.17).

``transport.py`` and ``multi.py`` drive libcurl more directly than
curl_cffi's public calls allow; what it needs that curl_cffi does not promise is here, so that an
upgrade of curl_cffi is checked in this one file (and
``tests/unit/upstream/test_curl_shim.py``), and ``pyproject.toml`` pins
curl_cffi to the minor version this was written for. Private, and why:

* ``Curl._curl``, the libcurl easy handle, and ``lib._curl_easy_setopt``,
  curl_cffi's C wrapper of ``curl_easy_setopt``: ``Curl.setopt`` builds its
  lookup tables on every call, a few microseconds each, ten times a
  request (``easy_handle``, ``easy_setopt``, ``long_param``);
* ``lib.curl_multi_*`` and ``ffi.callback``: ``chat2api.upstream.multi``
  drives a multi handle itself instead of ``AsyncCurl`` (whose glue
  registers sockets again on every call, schedules a new loop timer per
  read and polls every 0.1 s), with a socket callback of its own
  (curl_cffi's ``@ffi.def_extern`` one belongs to ``AsyncCurl``, which
  ``net/fetch.py`` still uses) and ``curl_multi_timeout`` for its deadlines
  (``multi_init`` and the other ``multi_*``, ``multi_callbacks``; a long
  option goes by value: ``multi_setopt_long``);
* ``Curl._ensure_cacert``: ``AsyncCurl.add_handle`` set the CA bundle; done
  once per handle (``use_ca_bundle``);
* ``Curl._get_error``: a failed transfer's ``CurlError`` as ``AsyncCurl``
  built it, with libcurl's message (``transfer_error``);
* ``ffi.callback`` for ``CURLOPT_WRITEFUNCTION`` / ``HEADERFUNCTION``:
  ``Curl.setopt`` binds a Python function behind curl_cffi's own extern
  callback, three Python frames and a handle lookup per body chunk and per
  header line; a callback of our own is one (``easy_callbacks``);
* ``lib.curl_easy_getinfo``: ``Curl.getinfo`` allocates and looks options
  up per call (``easy_getinfo``);
* ``lib.curl_slist_append`` / ``lib.curl_slist_free_all``: a request's
  header list is built and freed by the transport, so that it can be freed
  as soon as the final response headers arrived (a long stream need not
  keep the token lines in it) (``header_list``, ``free_header_list``);
* ``curl_cffi.requests.impersonate.REAL_TARGET_MAP``, not exported: what
  ``"chrome"`` and the like name in this release (``real_target``).

``ffi`` and ``lib`` are exported by curl_cffi, but the C functions in
``lib`` are whatever its binding declares, not an API it documents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from curl_cffi import Curl, CurlError, CurlMOpt, CurlOpt, ffi, lib
from curl_cffi.requests.impersonate import REAL_TARGET_MAP

__all__ = [
    "MULTI_MAXCONNECTS",
    "MULTI_MAX_TOTAL_CONNECTIONS",
    "NULL",
    "easy_callbacks",
    "easy_getinfo",
    "easy_handle",
    "easy_setopt",
    "free_header_list",
    "header_list",
    "int_out",
    "long_out",
    "long_param",
    "multi_add_handle",
    "multi_callbacks",
    "multi_cleanup",
    "multi_info_read",
    "multi_init",
    "multi_remove_handle",
    "multi_setopt_long",
    "multi_socket_action",
    "multi_timeout",
    "offset_out",
    "real_target",
    "transfer_error",
    "unpack",
    "use_ca_bundle",
]

NULL: Any = ffi.NULL
"""The C null pointer: unsets a string option, ends an empty header list."""

easy_setopt: Any = lib._curl_easy_setopt
"""``easy_setopt(easy_handle(curl), option, param) -> CURLcode``; a long goes as ``long_param``.

The C function itself, not a wrapper: it is called about ten times a request.
"""


def easy_handle(curl: Curl) -> Any:
    """The libcurl easy handle behind ``curl`` (keep it: it lives as long as ``curl``)."""
    return curl._curl


def long_param(value: int) -> Any:
    """``value`` as ``easy_setopt`` takes a long option."""
    return ffi.new("long*", value)


def int_out() -> Any:
    """An ``int *`` for a C function to write to (read it as ``[0]``)."""
    return ffi.new("int *")


def long_out() -> Any:
    """A ``long *`` for a C function to write to (read it as ``[0]``)."""
    return ffi.new("long *")


def use_ca_bundle(curl: Curl) -> None:
    """Give ``curl`` curl_cffi's CA bundle (``certifi``'s), as its own transfers do."""
    curl._ensure_cacert()


def transfer_error(curl: Curl, code: int) -> CurlError:
    """The ``CurlError`` of ``curl``'s failed transfer (CURLcode ``code``), as ``AsyncCurl``
    made it (with libcurl's message)."""
    error: CurlError | None = curl._get_error(code, "perform")
    return error if error is not None else CurlError(f"curl: ({code})", code)


def offset_out() -> Any:
    """A ``curl_off_t *`` for ``easy_getinfo`` of a ``*_T`` info (read it as ``[0]``)."""
    return ffi.new("int64_t *")


easy_getinfo: Callable[[Any, int, Any], int] = lib.curl_easy_getinfo
"""``curl_easy_getinfo(easy_handle(curl), info, out) -> CURLcode``."""

unpack: Callable[[Any, int], bytes] = ffi.unpack
"""``unpack(char_pointer, length) -> bytes``: what a write or header callback was given."""

WriteCallback = Callable[[Any, int, int, Any], int]
"""``fn(data, size, nmemb, userdata) -> bytes taken``; ``unpack(data, nmemb)`` is the data."""


def easy_callbacks(
    easy: Any,
    on_body: WriteCallback,
    on_header: WriteCallback,
    on_error: Callable[[BaseException], None],
) -> tuple[Any, Any]:
    """Set ``easy``'s ``CURLOPT_WRITEFUNCTION`` and ``CURLOPT_HEADERFUNCTION`` to these Python
    functions (``WRITEDATA`` / ``HEADERDATA`` unused); keep what this returns as long as
    ``easy`` lives. An exception in either goes to ``on_error`` and fails the transfer
    (``CURLE_WRITE_ERROR``)."""

    def failed(kind: Any, error: BaseException | None, traceback: Any) -> None:
        if error is not None:
            on_error(error)

    signature = "size_t(char *, size_t, size_t, void *)"
    body_cb = ffi.callback(signature, on_body, 0, failed)
    header_cb = ffi.callback(signature, on_header, 0, failed)
    for option, callback in ((CurlOpt.WRITEFUNCTION, body_cb), (CurlOpt.HEADERFUNCTION, header_cb)):
        if lib._curl_easy_setopt(easy, option, callback):
            raise CurlError(f"curl_easy_setopt({option.name}) failed")
    return body_cb, header_cb


MULTI_MAXCONNECTS = CurlMOpt.MAXCONNECTS
MULTI_MAX_TOTAL_CONNECTIONS = CurlMOpt.MAX_TOTAL_CONNECTIONS

multi_init: Callable[[], Any] = lib.curl_multi_init
"""``curl_multi_init() -> CURLM *``."""
multi_cleanup: Callable[[Any], int] = lib.curl_multi_cleanup
"""``curl_multi_cleanup(multi) -> CURLMcode``."""
multi_add_handle: Callable[[Any, Any], int] = lib.curl_multi_add_handle
"""``curl_multi_add_handle(multi, easy) -> CURLMcode``."""
multi_remove_handle: Callable[[Any, Any], int] = lib.curl_multi_remove_handle
"""``curl_multi_remove_handle(multi, easy) -> CURLMcode``."""
multi_socket_action: Callable[[Any, int, int, Any], int] = lib.curl_multi_socket_action
"""``curl_multi_socket_action(multi, fd, mask, int_out) -> CURLMcode``."""
multi_info_read: Callable[[Any, Any], Any] = lib.curl_multi_info_read
"""``curl_multi_info_read(multi, int_out) -> CURLMsg *`` (``.msg``, ``.easy_handle``,
``.data.result``) or ``NULL``."""
multi_timeout: Callable[[Any, Any], int] = lib.curl_multi_timeout
"""``curl_multi_timeout(multi, long_out) -> CURLMcode``: libcurl's deadline in ms, -1 for none."""


def multi_setopt_long(multi: Any, option: CurlMOpt, value: int) -> int:
    """``curl_multi_setopt`` of a long option; the CURLMcode.

    curl_cffi 0.17's ``AsyncCurl.setopt`` passes long options as a pointer,
    so libcurl would read an address as the value: here it goes by value.
    """
    code: int = lib.curl_multi_setopt(multi, option, ffi.cast("void *", value))
    return code


def multi_callbacks(multi: Any, on_socket: Callable[[Any, int, int, Any, Any], int]) -> Any:
    """Set ``multi``'s ``CURLMOPT_SOCKETFUNCTION`` to this Python function; keep what this
    returns for as long as ``multi`` lives."""
    socket_cb = ffi.callback("int(void *, int, int, void *, void *)", on_socket)
    if lib.curl_multi_setopt(multi, CurlMOpt.SOCKETFUNCTION, socket_cb):
        raise CurlError("curl_multi_setopt(SOCKETFUNCTION) failed")
    return socket_cb


def header_list(lines: list[bytes]) -> Any:
    """A libcurl ``curl_slist`` of ``lines`` (``NULL`` for none); free it with
    ``free_header_list`` once libcurl no longer reads it."""
    slist = NULL
    for line in lines:
        slist = lib.curl_slist_append(slist, line)
    return slist


def free_header_list(slist: Any) -> None:
    """Free a list made by ``header_list``."""
    lib.curl_slist_free_all(slist)


def real_target(name: str) -> str:
    """The curl-impersonate target ``name`` stands for ("chrome" → this release's Chrome)."""
    return str(REAL_TARGET_MAP.get(name, name))
