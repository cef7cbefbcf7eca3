"""Every use of curl_cffi below its public API, in one place (written for curl_cffi 0.17).

``transport.py`` drives libcurl more directly than curl_cffi's public calls
allow; what it needs that curl_cffi does not promise is here, so that an
upgrade of curl_cffi is checked in this one file (and
``tests/unit/upstream/test_curl_shim.py``), and ``pyproject.toml`` pins
curl_cffi to the minor version this was written for. Private, and why:

* ``Curl._curl``, the libcurl easy handle, and ``lib._curl_easy_setopt``,
  curl_cffi's C wrapper of ``curl_easy_setopt``: ``Curl.setopt`` builds its
  lookup tables on every call, a few microseconds each, ten times a
  request (``easy_handle``, ``easy_setopt``, ``long_param``);
* ``AsyncCurl._curlm``, the multi handle, with ``lib.curl_multi_setopt``:
  curl_cffi 0.17's ``AsyncCurl.setopt`` passes long options as a pointer,
  so libcurl would read an address as the connection limit
  (``multi_setopt_long``);
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

from typing import Any

from curl_cffi import AsyncCurl, Curl, CurlMOpt, ffi, lib
from curl_cffi.requests.impersonate import REAL_TARGET_MAP

__all__ = [
    "NULL",
    "easy_handle",
    "easy_setopt",
    "free_header_list",
    "header_list",
    "long_param",
    "multi_setopt_long",
    "real_target",
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


def multi_setopt_long(acurl: AsyncCurl, option: CurlMOpt, value: int) -> int:
    """``curl_multi_setopt`` of a long option on ``acurl``'s multi handle; the CURLMcode."""
    code: int = lib.curl_multi_setopt(acurl._curlm, option, ffi.cast("void *", value))
    return code


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
