"""fetch_url against loopback servers: what it fetches, and what it refuses.

Every server runs on 127.0.0.1 and an ephemeral port, in the test's own event
loop; public names are never resolved for real (resolvers are injected).
"""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chat2api.net.fetch import (
    Answer,
    Fetched,
    FetchError,
    Hop,
    UrlNotAllowed,
    UrlTimeout,
    UrlTooLarge,
    address_problem,
    curl_connector,
    fetch_url,
)
from chat2api.settings import load_settings

MB = 1 << 20

Handler = Callable[[str, dict[str, str], asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Server:
    """A tiny HTTP/1.1 server: each request is handed to ``handler``; requests are recorded."""

    handler: Handler
    port: int = 0
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    connections: int = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            target = lines[0].split(" ")[1]
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            self.requests.append((target, headers))
            await self.handler(target, headers, writer)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[Server]:
    """Run ``handler`` on 127.0.0.1 and an ephemeral port for the duration."""
    server = Server(handler)
    listener = await asyncio.start_server(server._serve, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        await listener.wait_closed()


def respond(
    body: bytes, *, status: str = "200 OK", headers: dict[str, str] | None = None
) -> Handler:
    """A handler answering every request with ``body`` and a Content-Length."""

    async def handler(target: str, req: dict[str, str], writer: asyncio.StreamWriter) -> None:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}"
            "Connection: close\r\n\r\n".encode()
            + body
        )

    return handler


def redirect(location: str) -> Handler:
    """A handler answering 302 to ``location``."""
    return respond(b"", status="302 Found", headers={"Location": location})


def static_resolver(table: dict[str, list[str]]) -> tuple[Any, list[str]]:
    """A resolver answering from ``table``, and the list of names it was asked."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]

    return resolve, asked


def spy_connector() -> tuple[Any, list[Hop]]:
    """A connector that records hops and fails the test if it is ever used."""
    hops: list[Hop] = []

    def connect(hop: Hop) -> AbstractAsyncContextManager[Any]:
        hops.append(hop)
        raise AssertionError(f"connection attempted to {hop.url}")

    return connect, hops


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


def refusal(url: str, **kwargs: Any) -> FetchError:
    """The error fetching ``url`` raises (with a spy connector unless one is given)."""
    kwargs.setdefault("max_bytes", MB)
    kwargs.setdefault("timeout", 5.0)
    if "connector" not in kwargs:
        kwargs["connector"], _ = spy_connector()
    with pytest.raises(FetchError) as info:
        run(fetch_url(url, **kwargs))
    return info.value


@dataclass
class LocalFetch:
    """One fetch from a loopback server: the result or the error, the server, the time taken."""

    got: Fetched | None
    error: FetchError | None
    server: Server
    took: float


def fetch_local(handler: Handler, path: str = "/", **kwargs: Any) -> LocalFetch:
    """Serve ``handler`` on 127.0.0.1 and fetch ``path`` from it, 127.0.0.1 allowed."""
    kwargs.setdefault("max_bytes", MB)
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("allowed_hosts", frozenset({"127.0.0.1"}))

    async def main() -> LocalFetch:
        async with serving(handler) as server:
            started = time.monotonic()
            try:
                got = await fetch_url(f"http://127.0.0.1:{server.port}{path}", **kwargs)
            except FetchError as exc:
                return LocalFetch(None, exc, server, time.monotonic() - started)
            return LocalFetch(got, None, server, time.monotonic() - started)

    return run(main())


# --- fetching through curl ----------------------------------------------------


def test_allowed_loopback_fetch_returns_body_type_and_name() -> None:
    """With 127.0.0.1 allowed, a real curl fetch returns body, media type and file name."""
    handler = respond(
        b"\x89PNG-ish",
        headers={
            "Content-Type": "Image/PNG; charset=binary",
            "Content-Disposition": 'attachment; filename="cat photo.png"',
        },
    )
    done = fetch_local(handler, "/files/x.bin?a=1")
    assert done.got is not None
    assert done.got.data == b"\x89PNG-ish"
    assert done.got.content_type == "image/png"
    assert done.got.filename == "cat photo.png"
    assert done.got.final_url.endswith("/files/x.bin?a=1")
    assert done.server.requests[0][0] == "/files/x.bin?a=1"


def test_file_name_falls_back_to_the_url_path() -> None:
    """Without Content-Disposition the file name is the URL's last path segment."""
    got = fetch_local(respond(b"x"), "/a/report%20v2.pdf").got
    assert got is not None
    assert got.filename == "report v2.pdf"
    assert got.content_type is None


def test_connects_to_the_checked_address_with_the_original_host_header() -> None:
    """A name is resolved once by us; curl connects to that address and sends the name as Host."""

    async def main() -> tuple[Fetched, Server, list[str]]:
        async with serving(respond(b"pinned")) as server:
            resolve, asked = static_resolver({"files.test": ["127.0.0.1"]})
            got = await fetch_url(
                f"http://files.test:{server.port}/p",
                max_bytes=MB,
                timeout=5,
                allowed_hosts=frozenset({"files.test"}),
                resolver=resolve,
            )
            return got, server, asked

    got, server, asked = run(main())
    assert got.data == b"pinned"
    assert asked == ["files.test"]  # once: curl did not resolve it again
    assert server.requests[0][1]["host"] == f"files.test:{server.port}"


async def _start_to_end(target: str, req: dict[str, str], writer: asyncio.StreamWriter) -> None:
    if target == "/start":
        await redirect("/end")(target, req, writer)
    else:
        await respond(b"arrived")(target, req, writer)


def test_redirect_within_allowed_hosts_is_followed() -> None:
    """A relative redirect on an allowed host is followed and final_url names the target."""
    done = fetch_local(_start_to_end, "/start")
    assert done.got is not None
    assert done.got.data == b"arrived"
    assert done.got.final_url == f"http://127.0.0.1:{done.server.port}/end"
    assert [t for t, _ in done.server.requests] == ["/start", "/end"]


def test_connection_refused_is_a_fetch_failure() -> None:
    """A port nobody listens on gives url_fetch_failed, not a crash."""

    async def main() -> int:
        async with serving(respond(b"")) as server:
            return server.port

    port = run(main())  # closed again: nothing listens there now
    error = refusal(
        f"http://127.0.0.1:{port}/",
        allowed_hosts=frozenset({"127.0.0.1"}),
        connector=curl_connector,
    )
    assert type(error) is FetchError
    assert error.code == "url_fetch_failed"


# --- refusals -----------------------------------------------------------------


def test_loopback_test_server_is_refused_without_allow() -> None:
    """http://127.0.0.1:<port>/ is refused and the running server sees no connection."""

    async def main() -> tuple[FetchError, Server]:
        async with serving(respond(b"secret")) as server:
            with pytest.raises(FetchError) as info:
                await fetch_url(f"http://127.0.0.1:{server.port}/", max_bytes=MB, timeout=5)
            return info.value, server

    error, server = run(main())
    assert isinstance(error, UrlNotAllowed)
    assert error.code == "url_not_allowed"
    assert "loopback address (127.0.0.1)" in error.message
    assert server.connections == 0


def test_private_address_is_refused_before_connecting() -> None:
    """http://10.0.0.1/ is refused at once: no resolver call, no connection attempt."""
    resolve, asked = static_resolver({})
    connect, hops = spy_connector()
    error = refusal("http://10.0.0.1/", resolver=resolve, connector=connect)
    assert isinstance(error, UrlNotAllowed)
    assert "private address (10.0.0.1)" in error.message
    assert asked == [] and hops == []


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://169.254.169.254/latest/meta-data", "link-local address (169.254.169.254)"),
        ("http://[::1]/", "loopback address (::1)"),
        ("http://[::ffff:10.0.0.1]/", "private (IPv4 inside IPv6)"),
        # Decimal and shortened IPv4 forms curl would accept are loopback too.
        ("http://2130706433/", "loopback address (127.0.0.1)"),
        ("http://127.1/", "loopback address (127.0.0.1)"),
        ("http://0x7f.0.0.1/", "loopback address (127.0.0.1)"),
    ],
)
def test_non_public_address_literals_are_refused(url: str, says: str) -> None:
    """Metadata, IPv6 loopback, IPv4 inside IPv6 and legacy IPv4 forms are refused, named."""
    error = refusal(url)
    assert isinstance(error, UrlNotAllowed)
    assert says in error.message


def test_metadata_host_name_is_refused_even_when_allowed() -> None:
    """metadata.google.internal is refused by name, before any resolution."""
    resolve, asked = static_resolver({"metadata.google.internal": ["8.8.8.8"]})
    error = refusal(
        "http://metadata.google.internal/computeMetadata/v1/",
        resolver=resolve,
        allowed_hosts=frozenset({"metadata.google.internal"}),
    )
    assert isinstance(error, UrlNotAllowed)
    assert "metadata" in error.message
    assert asked == []


def test_localhost_name_is_refused_after_resolution() -> None:
    """localhost resolves (through the system resolver) to loopback and is refused."""
    error = refusal("http://localhost/")
    assert isinstance(error, UrlNotAllowed)
    assert "host localhost resolves to a loopback address" in error.message


def test_name_resolving_to_loopback_is_refused() -> None:
    """evil.example mapped to 127.0.0.1 is refused, saying what it resolves to."""
    resolve, asked = static_resolver({"evil.example": ["93.184.216.34", "127.0.0.1"]})
    connect, hops = spy_connector()
    error = refusal("https://evil.example/img.png", resolver=resolve, connector=connect)
    assert error.message == ("The URL host evil.example resolves to a loopback address 127.0.0.1.")
    assert asked == ["evil.example"] and hops == []


def test_unresolvable_name_is_a_fetch_failure() -> None:
    """A name the resolver does not know is url_fetch_failed."""
    resolve, _ = static_resolver({})
    error = refusal("http://nowhere.example/", resolver=resolve)
    assert type(error) is FetchError
    assert "could not be resolved" in error.message


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("file:///etc/passwd", "Only http and https"),
        ("gopher://example.com/", "Only http and https"),
        ("ftp://example.com/x", "Only http and https"),
        ("http://user:pw@example.com/", "credentials"),
        ("http:///nohost", "no host"),
        ("http://exa mple.com/", "not a valid name"),
        ("http://example.com:99999/", "malformed"),
    ],
)
def test_malformed_or_foreign_urls_are_refused(url: str, why: str) -> None:
    """Other schemes, credentials, missing or odd hosts and bad ports are url_not_allowed."""
    error = refusal(url)
    assert isinstance(error, UrlNotAllowed)
    assert why in error.message


def test_redirect_to_loopback_is_refused() -> None:
    """An allowed server redirecting to 127.0.0.1 is refused at the redirect, not followed."""

    async def main() -> tuple[FetchError, Server, Server]:
        async with (
            serving(respond(b"secret")) as inner,
            serving(redirect(f"http://127.0.0.1:{inner.port}/admin")) as outer,
        ):
            resolve, _ = static_resolver({"files.test": ["127.0.0.1"]})
            with pytest.raises(FetchError) as info:
                await fetch_url(
                    f"http://files.test:{outer.port}/",
                    max_bytes=MB,
                    timeout=5,
                    allowed_hosts=frozenset({"files.test"}),
                    resolver=resolve,
                )
            return info.value, outer, inner

    error, outer, inner = run(main())
    assert isinstance(error, UrlNotAllowed)
    assert "redirect target is a loopback address (127.0.0.1)" in error.message
    assert outer.connections == 1
    assert inner.connections == 0


# --- limits -------------------------------------------------------------------


async def _big_declared_length(target: str, req: dict[str, str], w: asyncio.StreamWriter) -> None:
    w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 22020096\r\n\r\n" + b"x" * 1000)


async def _endless_chunks(target: str, req: dict[str, str], w: asyncio.StreamWriter) -> None:
    w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"y" * 4096
    while True:  # never ends: only the client hanging up stops it
        w.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        await w.drain()


STALL_SECONDS = 10.0  # how long the stalling handlers keep the client waiting


async def _no_answer(target: str, req: dict[str, str], w: asyncio.StreamWriter) -> None:
    await asyncio.sleep(STALL_SECONDS)


async def _stalled_body(target: str, req: dict[str, str], w: asyncio.StreamWriter) -> None:
    w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
    await w.drain()
    await asyncio.sleep(STALL_SECONDS)


@pytest.mark.parametrize(
    ("handler", "kwargs", "kind", "code", "says", "requests"),
    [
        pytest.param(
            respond(b"nope", status="404 Not Found"),
            {"param": "messages[0].content[1]"},
            FetchError, "url_fetch_failed", "404", 1, id="http-404",
        ),
        pytest.param(
            redirect("file:///etc/passwd"), {},
            UrlNotAllowed, "url_not_allowed", "Redirect to a URL that is not allowed", 1,
            id="redirect-to-file",
        ),
        pytest.param(  # 5 redirects followed, the 6th refused
            redirect("/again"), {},
            FetchError, "url_fetch_failed", "more than 5 redirects", 6, id="redirect-loop",
        ),
        pytest.param(  # refused on the declared length, before reading the body
            _big_declared_length, {"max_bytes": 20 * MB},
            UrlTooLarge, "url_too_large", "21 MB, larger than 20 MB", 1, id="content-length",
        ),
        pytest.param(  # cut once past the limit: not waited out into a timeout
            _endless_chunks, {"max_bytes": 10_000},
            UrlTooLarge, "url_too_large", "larger than 9.77 KB", 1, id="endless-chunked",
        ),
        pytest.param(
            _no_answer, {"timeout": 0.5, "param": "input[0].content[0]"},
            UrlTimeout, "url_timeout", "longer than 0.5 s", 1, id="no-answer",
        ),
        pytest.param(  # headers arrive, the body stalls: the same deadline
            _stalled_body, {"timeout": 0.5},
            UrlTimeout, "url_timeout", "longer than 0.5 s", 1, id="stalled-body",
        ),
    ],
)  # fmt: skip
def test_failed_fetches_are_typed_400s(
    handler: Handler,
    kwargs: dict[str, Any],
    kind: type[FetchError],
    code: str,
    says: str,
    requests: int,
) -> None:
    """Each way a fetch fails is its own error class and code, with the caller's param, in time."""
    done = fetch_local(handler, **kwargs)
    assert done.got is None and done.error is not None
    assert type(done.error) is kind
    assert done.error.code == code and done.error.status_code == 400
    assert says in done.error.message
    assert done.error.param == kwargs.get("param")
    assert len(done.server.requests) == requests
    timeout = kwargs.get("timeout", 5.0)
    if kind is UrlTimeout:  # the deadline, not the server's 10 s stall, ended it
        assert timeout * 0.8 <= done.took < STALL_SECONDS
    else:  # ended by what the server sent, not waited out into the deadline
        assert done.took < timeout


def test_body_exactly_at_the_limit_is_accepted() -> None:
    """max_bytes is inclusive: a body of exactly that size is returned."""
    got = fetch_local(respond(b"z" * 1000), max_bytes=1000).got
    assert got is not None and len(got.data) == 1000


# --- address classification ---------------------------------------------------


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("240.0.0.1", "private"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("::ffff:169.254.169.254", "link-local (IPv4 inside IPv6)"),
        ("64:ff9b::a00:1", "private (IPv4 inside IPv6)"),
        ("2002:7f00:1::", "loopback (IPv4 inside IPv6)"),
        ("8.8.8.8", None),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_address_problem(address: str, problem: str | None) -> None:
    """Each non-public range is named; public addresses pass."""
    assert address_problem(ipaddress.ip_address(address)) == problem


def test_fetch_allowed_hosts_setting_is_a_comma_list() -> None:
    """FETCH_ALLOWED_HOSTS splits on commas like the other list settings; default empty."""
    assert load_settings({}, env_file=None).fetch_allowed_hosts == []
    settings = load_settings({"FETCH_ALLOWED_HOSTS": "files.internal, 10.0.0.5,"}, env_file=None)
    assert settings.fetch_allowed_hosts == ["files.internal", "10.0.0.5"]


def fake_connector(peer: str, body: bytes = b"ok") -> tuple[Any, list[Hop]]:
    """A connector answering 200 with ``body`` and reporting ``peer`` as the address used."""
    hops: list[Hop] = []

    @asynccontextmanager
    async def connect(hop: Hop) -> AsyncIterator[Answer]:
        hops.append(hop)

        async def chunks() -> AsyncIterator[bytes]:
            yield body

        yield Answer(200, {"content-type": "text/plain"}, chunks(), peer)

    return connect, hops


def test_connector_is_given_only_checked_public_addresses() -> None:
    """The connector gets the rebuilt URL, host, port and every checked address."""
    resolve, _ = static_resolver({"cdn.example": ["93.184.216.34", "2606:2800:220:1::1"]})
    connect, hops = fake_connector("2606:2800:220:1:0::1")
    got = run(
        fetch_url(
            "HTTPS://CDN.example./a%20b.txt#frag",
            max_bytes=MB,
            timeout=5,
            resolver=resolve,
            connector=connect,
        )
    )
    assert got.data == b"ok"
    assert got.final_url == "https://cdn.example/a%20b.txt"
    assert hops[0].host == "cdn.example" and hops[0].port == 443
    assert hops[0].addresses == ("93.184.216.34", "2606:2800:220:1::1")


def test_connection_to_an_unchecked_address_is_refused() -> None:
    """If the transport reports an address other than those checked, the body is refused."""
    resolve, _ = static_resolver({"cdn.example": ["93.184.216.34"]})
    connect, _ = fake_connector("10.0.0.9")
    error = refusal("http://cdn.example/", resolver=resolve, connector=connect)
    assert isinstance(error, UrlNotAllowed)
    assert "10.0.0.9" in error.message


def test_allowed_address_literals_are_compared_canonically() -> None:
    """An allowed entry spelled [0:0::1] allows http://[::1]/."""
    connect, hops = fake_connector("::1")
    got = run(
        fetch_url(
            "http://[::1]:8080/x",
            max_bytes=MB,
            timeout=5,
            allowed_hosts=frozenset({"[0:0::1]"}),
            connector=connect,
        )
    )
    assert got.data == b"ok"
    assert hops[0].url == "http://[::1]:8080/x"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_sends_the_name_as_sni_to_the_pinned_address(tmp_path: Path) -> None:
    """Over TLS, curl connects to the checked address but names the host in SNI."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    openssl = [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=files.test",
    ]
    subprocess.run(
        [*openssl, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)

    async def main() -> FetchError:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        listener = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
        port = listener.sockets[0].getsockname()[1]
        resolve, _ = static_resolver({"files.test": ["127.0.0.1"]})
        try:
            with pytest.raises(FetchError) as info:
                await fetch_url(
                    f"https://files.test:{port}/x",
                    max_bytes=MB,
                    timeout=5,
                    allowed_hosts=frozenset({"files.test"}),
                    resolver=resolve,
                )
        finally:
            listener.close()
            await listener.wait_closed()
        return info.value

    error = run(main())
    assert names == ["files.test"]
    assert error.code == "url_fetch_failed"  # the self-signed certificate is not trusted
