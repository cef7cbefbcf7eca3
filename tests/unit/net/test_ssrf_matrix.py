"""The SSRF matrix: every way of writing a non-public address in a URL, one table.

Each row is a URL a client might give and the refusal it must get; public
names resolve through a table, and the connector fails the test if any
connection is attempted. The audit's forms: address literals in every
notation curl accepts, IPv4 inside IPv6, names resolving inward, and URL
syntax that puts a different host in front of the parser than the eye.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from chat2api.net.fetch import FetchError, Hop, UrlNotAllowed, fetch_url

NAMES = {
    "inward.example": ["10.0.0.7"],
    "mixed.example": ["93.184.216.34", "192.168.0.9"],
    "six.example": ["fd00::7"],
    "sitelocal.example": ["fec0::7"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "public.example": ["93.184.216.34"],
}

# (url, a phrase the refusal must contain)
MATRIX: list[tuple[str, str]] = [
    # IPv4 literals in every notation
    ("http://127.0.0.1/", "loopback"),
    ("http://127.255.255.254/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://0x7f.0.0.1/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://0/", "unspecified"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://10.0.0.1/", "private"),
    ("http://172.31.255.255/", "private"),
    ("http://192.168.0.1/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://100.64.0.1/", "shared"),
    ("http://224.0.0.1/", "multicast"),
    ("http://240.0.0.1/", "private"),
    ("http://255.255.255.255/", "private"),
    # IPv6 literals
    ("http://[::1]/", "loopback"),
    ("http://[0:0:0:0:0:0:0:1]/", "loopback"),
    ("http://[::]/", "unspecified"),
    ("http://[fc00::1]/", "private"),
    ("http://[fd12:3456::1]/", "private"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fec0::1]/", "site-local"),
    ("http://[fefe:1::1]/", "site-local"),
    ("http://[ff02::1]/", "multicast"),
    ("http://[2001:db8::1]/", "private"),
    # IPv4 inside IPv6
    ("http://[::ffff:127.0.0.1]/", "loopback (IPv4 inside IPv6)"),
    ("http://[::ffff:7f00:1]/", "loopback (IPv4 inside IPv6)"),
    ("http://[::ffff:169.254.169.254]/", "link-local (IPv4 inside IPv6)"),
    ("http://[64:ff9b::a00:1]/", "private (IPv4 inside IPv6)"),
    ("http://[2002:7f00:1::]/", "loopback (IPv4 inside IPv6)"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "(IPv4 inside IPv6)"),
    # names
    ("http://localhost/", "loopback"),
    ("http://LOCALHOST./", "loopback"),
    ("http://inward.example/", "resolves to a private address"),
    ("http://inward.example./", "resolves to a private address"),
    ("http://mixed.example/", "resolves to a private address"),
    ("http://six.example/", "resolves to a private address"),
    ("http://sitelocal.example/", "resolves to a site-local address"),
    ("http://mapped.example/", "loopback"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
    # syntax that hides the real host
    ("http://public.example@127.0.0.1/", "credentials"),
    ("http://127.0.0.1:80@public.example/", "credentials"),
    ("http://127.0.0.1#@public.example/", "loopback"),
    ("http://127.0.0.1?@public.example/", "loopback"),
    ("http://127.0.0.1:8080/", "loopback"),
    ("http://[::1]:80/", "loopback"),
    ("http://%31%32%37.0.0.1/", "not a valid name"),
    ("http://public.example\\@127.0.0.1/", "credentials"),
    ("http://127.0.0.1%00.public.example/", "not a valid name"),
    ("http://[::1%25eth0]/", ""),
    # other schemes
    ("file:///etc/passwd", "Only http and https"),
    ("gopher://127.0.0.1:6379/_INFO", "Only http and https"),
    ("dict://127.0.0.1:11211/stats", "Only http and https"),
    ("ftp://127.0.0.1/", "Only http and https"),
    ("HTTP://127.0.0.1/", "loopback"),
]


@asynccontextmanager
async def _never(hop: Hop) -> AsyncIterator[Any]:
    raise AssertionError(f"a connection was attempted to {hop.url}")
    yield  # pragma: no cover - an async generator, never reached


def _connector(hop: Hop) -> AbstractAsyncContextManager[Any]:
    return _never(hop)


async def _resolve(host: str, port: int) -> list[str]:
    if host == "localhost":
        return ["127.0.0.1"]
    if host not in NAMES:
        raise OSError(f"no such host {host}")
    return NAMES[host]


@pytest.mark.parametrize(("url", "why"), MATRIX, ids=[url for url, _ in MATRIX])
def test_ssrf_matrix(url: str, why: str) -> None:
    """Each inward URL is refused with url_not_allowed before any connection."""

    async def main() -> FetchError:
        with pytest.raises(FetchError) as info:
            await fetch_url(url, max_bytes=1024, timeout=5, resolver=_resolve, connector=_connector)
        return info.value

    error = asyncio.run(main())
    assert isinstance(error, UrlNotAllowed), (type(error).__name__, error.message)
    assert error.code == "url_not_allowed"
    assert why in error.message
