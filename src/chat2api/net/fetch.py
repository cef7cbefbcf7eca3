"""Fetching a URL a client gave us, without opening the host's private network.

A client-supplied URL is a request made *from our host*: without care it
reaches the loopback interface, the LAN, or the cloud metadata service at
169.254.169.254. So every hop is handled the same way:

1. the URL is split and rebuilt from the parts checked (``http``/``https``
   only, no userinfo), so curl is handed exactly the host that was checked;
2. the host is resolved once, here, and refused if ANY address is not public
   (loopback, private, link-local, unspecified, multicast, reserved, shared
   100.64/10, or an IPv6 form embedding such an IPv4 address);
3. curl connects to those checked addresses and no others: ``CURLOPT_RESOLVE``
   pins ``host:port`` to them, so curl never resolves the name itself (a DNS
   answer that changes between check and connect — "rebinding" — is never
   asked for), while the Host header, SNI and certificate check still use the
   name. The address curl reports having used is checked against the pin;
4. redirects are not followed by curl but here, at most ``MAX_REDIRECTS``,
   each target checked from step 1.

The body is read as a stream and abandoned once it passes ``max_bytes``
(a larger Content-Length is refused before reading); one deadline covers
resolution, every hop and the body.

Each hop gets a curl session of its own: the pin lives in the session's DNS
cache, and a shared session would let one fetch's pin (or connection) serve
another. Fetches of client URLs are rare and go to arbitrary hosts, so there
is no connection reuse worth keeping.

Errors (all 400, ``invalid_request_error``; the caller names the part with
``param``)::

    FetchError                 url_fetch_failed  unreachable, HTTP error, too many redirects
    ├── UrlNotAllowed          url_not_allowed   scheme, credentials, non-public address
    ├── UrlTooLarge            url_too_large     Content-Length or body over max_bytes
    └── UrlTimeout             url_timeout       the deadline passed
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from curl_cffi.const import CurlHttpVersion, CurlOpt
from curl_cffi.requests import AsyncSession
from curl_cffi.requests import exceptions as curl_errors

from chat2api.errors import InvalidRequest

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Names of cloud metadata services, refused even when listed as allowed.
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)
_HOST_CHARS = re.compile(r"^[a-z0-9_.-]+$")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchError(InvalidRequest):
    """A client-supplied URL could not be fetched."""

    default_code = "url_fetch_failed"


class UrlNotAllowed(FetchError):
    """The URL or an address it resolves to is not one we may connect to."""

    default_code = "url_not_allowed"


class UrlTooLarge(FetchError):
    """The body is larger than the limit."""

    default_code = "url_too_large"


class UrlTimeout(FetchError):
    """The fetch did not finish within its time limit."""

    default_code = "url_timeout"


@dataclass(frozen=True)
class Fetched:
    """A fetched body. ``content_type`` is the media type only, lower case."""

    data: bytes
    content_type: str | None
    final_url: str
    filename: str | None


@dataclass(frozen=True)
class Hop:
    """One request, checked: connect only to ``addresses`` for ``host:port``."""

    url: str
    host: str
    port: int
    addresses: tuple[str, ...]
    timeout: float


@dataclass
class Answer:
    """What a connector returns: status, headers (lower-case names), the body."""

    status: int
    headers: Mapping[str, str]
    chunks: AsyncIterator[bytes]
    peer: str | None = None  # the address actually connected to, when known


Resolver = Callable[[str, int], Awaitable[list[str]]]
Connector = Callable[[Hop], AbstractAsyncContextManager[Answer]]


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (TCP)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def address_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be connected to (``"loopback"``, ...), or None if public."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is None and ip.teredo is not None:
            embedded = ip.teredo[1]
        if embedded is not None:
            problem = address_problem(embedded)
            return None if problem is None else f"{problem} (IPv4 inside IPv6)"
    checks: list[tuple[bool, str]] = [
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED, "shared (carrier-grade NAT)"),
        # fec0::/10: deprecated (RFC 3879), still routed inside some networks, and
        # Python counts it as global.
        (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local, "site-local"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "non-public"),
    ]
    return next((name for bad, name in checks if bad), None)


def _parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:  # legacy IPv4 forms curl also accepts: 127.1, 0x7f000001, 2130706433
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


@dataclass(frozen=True)
class _Target:
    url: str
    host: str  # lower case, IDNA, no brackets
    port: int
    ip: IPAddress | None  # when the host is an address literal


def _split(url: str) -> _Target:
    """Check the URL's shape and rebuild it from the checked parts."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UrlNotAllowed(f"The URL is malformed ({exc}).") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise UrlNotAllowed(f"Only http and https URLs can be fetched, not {scheme or 'this'!r}.")
    if parts.username is not None or parts.password is not None:
        raise UrlNotAllowed("URLs with credentials (user@host) are not fetched.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlNotAllowed("The URL has no host.")
    ip = _parse_ip(host)
    if ip is None:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise UrlNotAllowed(f"The host {host!r} is not a valid name.") from exc
        if not _HOST_CHARS.match(host):
            raise UrlNotAllowed(f"The host {host!r} is not a valid name.")
        netloc_host = host
    else:
        netloc_host = f"[{ip}]" if ip.version == 6 else str(ip)
    port = port or _DEFAULT_PORTS[scheme]
    netloc = netloc_host if port == _DEFAULT_PORTS[scheme] else f"{netloc_host}:{port}"
    rebuilt = f"{scheme}://{netloc}{parts.path or '/'}"
    if parts.query:
        rebuilt += f"?{parts.query}"
    return _Target(rebuilt, host if ip is None else str(ip), port, ip)


async def _check(
    target: _Target, allowed_hosts: frozenset[str], resolver: Resolver, hop_name: str
) -> tuple[str, ...]:
    """The addresses ``target`` may be connected to, or UrlNotAllowed saying why."""
    if target.host in METADATA_HOSTS:
        raise UrlNotAllowed(f"The {hop_name} names a cloud metadata host ({target.host}).")
    allowed = target.host in allowed_hosts
    if target.ip is not None:
        problem = None if allowed else address_problem(target.ip)
        if problem:
            raise UrlNotAllowed(f"The {hop_name} is a {problem} address ({target.ip}).")
        return (str(target.ip),)
    try:
        found = await resolver(target.host, target.port)
    except OSError as exc:
        raise FetchError(f"The host {target.host} could not be resolved.") from exc
    addresses: list[str] = []
    for text in found:
        ip = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
        problem = None if allowed else address_problem(ip)
        if problem:
            raise UrlNotAllowed(
                f"The {hop_name} host {target.host} resolves to a {problem} address {ip}."
            )
        addresses.append(str(ip))
    if not addresses:
        raise FetchError(f"The host {target.host} has no address.")
    return tuple(addresses)


def human_size(n: int) -> str:
    """``20 MB``, ``9.77 KB``, ``512 bytes`` (binary units, as limits are set)."""
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def _media_type(value: str | None) -> str | None:
    media = (value or "").split(";", 1)[0].strip().lower()
    return media or None


def _filename(disposition: str | None, url: str) -> str | None:
    """From Content-Disposition (``filename*`` first), else the URL's last segment."""
    if disposition:
        star = re.search(r"filename\*\s*=\s*([^;]+)", disposition, re.I)
        if star:
            value = star.group(1).strip().strip('"')
            charset, _, rest = value.partition("''")
            name = unquote(rest if rest else value, encoding=charset or "utf-8", errors="replace")
            if name:
                return name
        plain = re.search(r'filename\s*=\s*("([^"]*)"|[^;]+)', disposition, re.I)
        if plain:
            name = (plain.group(2) if plain.group(2) is not None else plain.group(1)).strip()
            if name:
                return name
    segment = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return segment or None


@contextmanager
def _map_curl_errors(url: str) -> Iterator[None]:
    """curl_cffi's transport failures as FetchError / UrlTimeout."""
    try:
        yield
    except curl_errors.Timeout as exc:
        raise UrlTimeout(f"Fetching {url} timed out.") from exc
    except curl_errors.RequestException as exc:
        raise FetchError(f"Fetching {url} failed: {type(exc).__name__}.") from exc


@asynccontextmanager
async def curl_connector(hop: Hop) -> AsyncIterator[Answer]:
    """GET ``hop.url`` with curl, connecting to ``hop.addresses`` only."""
    options: dict[CurlOpt, Any] = {CurlOpt.PROTOCOLS_STR: "http,https"}
    if _parse_ip(hop.host) is None:
        pinned = ",".join(f"[{a}]" if ":" in a else a for a in hop.addresses)
        options[CurlOpt.RESOLVE] = [f"{hop.host}:{hop.port}:{pinned}"]
    session: AsyncSession[Any] = AsyncSession(
        impersonate="chrome",
        http_version=CurlHttpVersion.V2TLS,
        allow_redirects=False,
        trust_env=False,  # a proxy would resolve the name itself, past the pin
        max_clients=1,
        curl_options=options,
    )
    response: Any = None
    try:
        with _map_curl_errors(hop.url):
            response = await session.request("GET", hop.url, timeout=hop.timeout, stream=True)

        async def chunks() -> AsyncGenerator[bytes, None]:
            with _map_curl_errors(hop.url):
                async with aclosing(response.aiter_content()) as body:
                    async for chunk in body:
                        yield chunk

        headers = {k.lower(): v for k, v in response.headers.items() if v is not None}
        async with aclosing(chunks()) as body:
            yield Answer(response.status_code, headers, body, response.primary_ip or None)
    finally:
        await _drop(session, response)


async def _drop(session: AsyncSession[Any], response: Any) -> None:
    """End the transfer now, read or not: a stalled or oversized body is not awaited."""
    if response is not None and response.quit_now is not None:
        response.quit_now.set()
    # Closing the session removes the handle from curl's multi handle, which
    # closes the connection at once (quit_now alone waits for the next byte).
    await session.close()
    task = getattr(response, "astream_task", None)
    if task is not None and not task.done():
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=1.0)
        except (TimeoutError, curl_errors.RequestException):
            task.cancel()


async def fetch_url(
    url: str,
    *,
    max_bytes: int,
    timeout: float,  # noqa: ASYNC109 -- one deadline over resolution, hops and body
    allowed_hosts: frozenset[str] = frozenset(),
    resolver: Resolver = system_resolver,
    connector: Connector = curl_connector,
    param: str | None = None,
) -> Fetched:
    """GET a client-supplied URL safely (see the module docstring).

    ``allowed_hosts`` (host names or address literals, as in
    ``FETCH_ALLOWED_HOSTS``) skip the address check. Raises ``FetchError``
    or a subclass, with ``param`` set on it.
    """
    allowed = frozenset(_normal_host(h) for h in allowed_hosts)
    deadline = time.monotonic() + timeout
    try:
        async with asyncio.timeout(timeout):
            return await _fetch(url, max_bytes, deadline, allowed, resolver, connector)
    except TimeoutError as exc:
        raise UrlTimeout(f"Fetching {url} took longer than {timeout:g} s.", param=param) from exc
    except FetchError as exc:
        exc.param = param
        raise


async def _fetch(
    url: str,
    max_bytes: int,
    deadline: float,
    allowed: frozenset[str],
    resolver: Resolver,
    connector: Connector,
) -> Fetched:
    current = url
    for redirects in range(MAX_REDIRECTS + 1):
        hop_name = "URL" if redirects == 0 else "redirect target"
        try:
            target = _split(current)
        except UrlNotAllowed as exc:
            if redirects:
                exc.message = f"Redirect to a URL that is not allowed: {exc.message}"
                exc.args = (exc.message,)
            raise
        addresses = await _check(target, allowed, resolver, hop_name)
        left = max(deadline - time.monotonic(), 0.01)  # 0 would mean "no limit" to curl
        hop = Hop(target.url, target.host, target.port, addresses, left)
        async with connector(hop) as answer:
            if not _is_one_of(answer.peer, addresses):
                # Defence in depth: the pin was not honoured.
                raise UrlNotAllowed(f"Connected to {answer.peer}, not a checked address.")
            if answer.status in _REDIRECTS and answer.headers.get("location"):
                current = urljoin(target.url, answer.headers["location"])
                log.debug("fetch %s redirects to %s", target.url, current)
                continue
            if not 200 <= answer.status < 300:
                raise FetchError(f"Fetching {target.url} answered HTTP {answer.status}.")
            data = await _read(answer, max_bytes, target.url)
            return Fetched(
                data,
                _media_type(answer.headers.get("content-type")),
                target.url,
                _filename(answer.headers.get("content-disposition"), target.url),
            )
    raise FetchError(f"Fetching {url} took more than {MAX_REDIRECTS} redirects.")


def _normal_host(host: str) -> str:
    """An allowed-hosts entry as ``_split`` spells hosts: lower case, addresses canonical."""
    host = host.strip().lower().strip("[]").rstrip(".")
    ip = _parse_ip(host)
    return host if ip is None else str(ip)


def _is_one_of(peer: str | None, addresses: tuple[str, ...]) -> bool:
    """Whether the address curl reports is one of those checked (unknown counts as yes)."""
    if not peer:
        return True
    try:
        return ipaddress.ip_address(peer) in {ipaddress.ip_address(a) for a in addresses}
    except ValueError:
        return False


async def _read(answer: Answer, max_bytes: int, url: str) -> bytes:
    length = answer.headers.get("content-length", "").strip()
    if length.isdigit() and int(length) > max_bytes:
        size, limit = human_size(int(length)), human_size(max_bytes)
        raise UrlTooLarge(f"{url} is {size}, larger than {limit}.")
    body = bytearray()
    async for chunk in answer.chunks:
        body += chunk
        if len(body) > max_bytes:
            raise UrlTooLarge(f"{url} is larger than {human_size(max_bytes)}.")
    return bytes(body)
