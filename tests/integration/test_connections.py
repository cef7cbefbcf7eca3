"""Idle, slow and surplus connections are closed: header deadline, caps, the open-file limit."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx

from chat2api.sim import SimServer
from servers import ServiceFactory


def _connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    """A TCP connection to the service from ``source`` (any 127/8 address is local)."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    return conn


def _closed_after(conn: socket.socket, within: float) -> float | None:
    """Seconds until the server closed ``conn`` (reading and dropping), or None."""
    started = time.monotonic()
    conn.settimeout(0.05)
    while time.monotonic() - started < within:
        try:
            if conn.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - started
    return None


def test_idle_and_slowloris_connections_are_closed(make_service: ServiceFactory) -> None:
    """A connection sending nothing, or its headers a line at a time, is closed at the deadline.

    The slow client would go on dripping for ten times HEADER_TIMEOUT: the server must
    end both connections before that, and not before the deadline.
    """
    timeout = 0.6
    service = make_service(HEADER_TIMEOUT=str(timeout))
    opened = time.monotonic()
    idle = _connect(service.port)
    slow = _connect(service.port)
    slow.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
    closed_at = None
    while time.monotonic() - opened < 10 * timeout:
        try:
            slow.sendall(b"X-Drip: 1\r\n")  # a header line every 0.1 s, never the blank line
        except (BrokenPipeError, ConnectionResetError):
            closed_at = time.monotonic()
            break
        time.sleep(0.1)
    assert closed_at is not None, "the slow client kept its connection"
    assert closed_at - opened >= 0.8 * timeout
    assert _closed_after(idle, within=10 * timeout) is not None, "the idle one stayed open"
    idle.close()
    slow.close()
    # A client that does send its request in time is served as before.
    assert httpx.get(service.base_url + "/v1/models").status_code == 200


def test_connection_caps_in_all_and_per_address(make_service: ServiceFactory) -> None:
    """Past MAX_CLIENT_CONNECTIONS from one address, or MAX_CONNECTIONS in all: 503 and closed."""
    service = make_service(MAX_CONNECTIONS="6", MAX_CLIENT_CONNECTIONS="4", HEADER_TIMEOUT="30")
    held = [_connect(service.port) for _ in range(4)]
    time.sleep(0.2)
    fifth = _connect(service.port)
    refused = fifth.recv(65536)
    assert refused.startswith(b"HTTP/1.1 503 ")
    assert b'"code":"too_many_connections"' in refused
    assert _closed_after(fifth, within=2) is not None
    fifth.close()
    # Another address still gets in, up to the total.
    others = [_connect(service.port, "127.0.0.2") for _ in range(2)]
    time.sleep(0.2)
    third = _connect(service.port, "127.0.0.3")
    assert third.recv(65536).startswith(b"HTTP/1.1 503 ")
    third.close()
    # A held connection is served; once some close, new ones are admitted again.
    held[0].sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
    assert held[0].recv(65536).startswith(b"HTTP/1.1 200 ")
    for conn in held + others:
        conn.close()
    time.sleep(0.2)
    assert httpx.get(service.base_url + "/v1/models").status_code == 200


def test_serve_raises_the_open_file_limit(sim: SimServer, tmp_path: Path) -> None:
    """`chat2api serve` lifts its soft open-file limit to the hard limit at start."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(512, hard)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {
        "CHATGPT_BASE_URL": sim.base_url,
        "DATA_DIR": str(tmp_path),
        "POW_WORKERS": "0",
        "PYTHONMALLOC": "pymalloc",  # no restart: the PID stays the one started here
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "chat2api", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard)),
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        limits = Path(f"/proc/{process.pid}/limits").read_text()
        (line,) = [row for row in limits.splitlines() if row.startswith("Max open files")]
        assert line.split()[3:5] == [str(hard), str(hard)], line
    finally:
        process.terminate()
        process.wait(timeout=20)
        assert process.stderr is not None
        process.stderr.close()
