"""Shared parts of the HTTP benchmarks (``overhead.py``, ``streams.py``).

* ``running_servers``: the simulator and one chat2api process started as
  subprocesses on ephemeral loopback ports, stopped by PID on exit;
* ``DirectClient``: the minimal client that makes chat2api's upstream calls
  itself (``GET /`` once, then chat-requirements, proof of work, conversation);
* ``OpenAIClient``: the same load as OpenAI ``/v1/chat/completions`` requests;
* ``ProcessWatch`` / ``RssSampler``: CPU and memory of a process tree (psutil);
* small statistics and table helpers.

Both clients use one ``curl_cffi`` ``AsyncSession`` (Chrome impersonation,
``V2TLS`` so plain http stays HTTP/1.1 without an ``Upgrade: h2c``), the same
SSE decoder, and do no more work per request than reading and checking the
answer, so that a ratio of the two measures chat2api and not the client.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import psutil
from curl_cffi.const import CurlHttpVersion
from curl_cffi.requests import AsyncSession, Response
from curl_cffi.requests.exceptions import RequestException

from chat2api.heap import MALLOC_ENV
from chat2api.protocol import SSEDecoder
from chat2api.sentinel import (
    BrowserProfile,
    build_config,
    parse_home_page,
    requirements_token,
    solve,
)
from chat2api.sim import mint_access_token

MODEL = "gpt-4o"  # chat2api sends this slug unchanged; the direct client sends it too
TEXT_PART = "/message/content/parts/0"
REQUEST_TIMEOUT = 120.0


class BenchError(Exception):
    """A request gave a wrong or incomplete answer (counted, never timed)."""


# Per-request failures a benchmark counts instead of dying on.
REQUEST_ERRORS: tuple[type[Exception], ...] = (BenchError, RequestException, orjson.JSONDecodeError)


# --------------------------------------------------------------------------- servers


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raise the soft open-files limit (inherited by the servers we start); the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def free_port() -> int:
    """An ephemeral loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _chat2api_command() -> list[str]:
    script = Path(sys.executable).with_name("chat2api")
    if script.exists():
        return [str(script)]
    found = shutil.which("chat2api")
    if found is None:
        raise RuntimeError("the chat2api console script is not installed in this environment")
    return [found]


@dataclass
class Servers:
    """The running simulator and chat2api: URLs, processes, the access token."""

    sim_url: str
    api_url: str
    sim: psutil.Process
    api: psutil.Process
    token: str
    workdir: Path


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{url} exited with {proc.returncode} before answering:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:g}s (log: {log})")


def _stop(proc: subprocess.Popen[bytes], descendants: list[psutil.Process]) -> None:
    """SIGTERM by PID, SIGKILL after 10 s; then any of its descendants left behind."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for child in descendants:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()
    _, alive = psutil.wait_procs(descendants, timeout=5)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


def spawn(
    args: Sequence[str], log: Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``chat2api <args>`` as a subprocess, its output in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [*_chat2api_command(), *args], stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env
        )


def start_sim(workdir: Path, started: list[subprocess.Popen[bytes]]) -> str:
    """``chat2api sim`` on a free port, answering; its URL. Appended to ``started``."""
    port = free_port()
    log = workdir / "sim.log"
    sim = spawn(["sim", "--host", "127.0.0.1", "--port", str(port)], log, workdir)
    started.append(sim)
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url + "/", sim, log, 30.0)
    return url


def server_env(
    workdir: Path, sim_url: str, name: str, env: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of a benchmarked ``chat2api serve`` named ``name``, against ``sim_url``."""
    return (
        {"PYTHONMALLOC": "malloc"}  # as scripts/serve and the Docker image run it
        | MALLOC_ENV
        | dict(os.environ)
        | {
            "CHATGPT_BASE_URL": sim_url,
            "DATA_DIR": str(workdir / f"data-{name}"),
            "RETRY_TIMES": "0",
        }
        | (env or {})
    )


def start_api(
    workdir: Path,
    sim_url: str,
    started: list[subprocess.Popen[bytes]],
    *,
    name: str = "api",
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
    args: Sequence[str] = (),
) -> tuple[str, subprocess.Popen[bytes]]:
    """``chat2api serve`` on a free port against ``sim_url``, answering; its URL and process."""
    port = free_port()
    log = workdir / f"{name}.log"
    full_env = server_env(workdir, sim_url, name, env)
    # cwd is the work directory, so that no stray .env of the caller is read
    api = spawn(
        ["serve", "--host", "127.0.0.1", "--port", str(port), *args], log, workdir, full_env
    )
    started.append(api)
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url + "/v1/models", api, log, timeout)
    return url, api


def stop_all(started: list[subprocess.Popen[bytes]]) -> None:
    """Stop the processes by PID, last started first, with their descendants."""
    known: dict[int, list[psutil.Process]] = {}
    for proc in started:
        with contextlib.suppress(psutil.NoSuchProcess):
            known[proc.pid] = psutil.Process(proc.pid).children(recursive=True)
    for proc in reversed(started):  # chat2api first, then its upstream
        _stop(proc, known.get(proc.pid, []))


def show_logs(workdir: Path) -> None:
    """The tails of the servers' logs, on stderr (before the directory goes)."""
    for log in sorted(workdir.glob("*.log")):
        tail = log.read_text(errors="replace")[-3000:]
        print(f"--- last lines of {log.name}:\n{tail}", file=sys.stderr)


@contextlib.contextmanager
def running_servers(
    startup_timeout: float = 30.0,
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
) -> Iterator[Servers]:
    """Start ``chat2api sim`` and ``chat2api serve`` on free ports; stop both on exit.

    ``env`` and ``args`` go to ``serve`` (``UPSTREAM_PROTOCOL``, ``--workers``).
    """
    raise_fd_limit()
    started: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="chat2api-bench-") as tmp:
        workdir = Path(tmp)
        try:
            sim_url = start_sim(workdir, started)
            api_url, api = start_api(
                workdir, sim_url, started, timeout=startup_timeout, env=env, args=args
            )
            yield Servers(
                sim_url,
                api_url,
                psutil.Process(started[0].pid),
                psutil.Process(api.pid),
                mint_access_token(),
                workdir,
            )
        except BaseException:  # show why, before the logs go with the directory
            show_logs(workdir)
            raise
        finally:
            stop_all(started)


def new_session(max_clients: int) -> AsyncSession[Response]:
    """The load client's session, configured as chat2api configures its upstream one."""
    return AsyncSession(
        impersonate="chrome", http_version=CurlHttpVersion.V2TLS, max_clients=max_clients
    )


# --------------------------------------------------------------------------- clients


@dataclass(slots=True)
class StreamResult:
    """One stream: seconds to the first answer text, to the end, and its text."""

    ttfb: float
    total: float
    text: str
    done: bool


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else ""


async def fetch_profile(session: AsyncSession[Response], base_url: str) -> BrowserProfile:
    """``GET /`` once: a browser profile with the build id and scripts of the home page."""
    answer = await session.get(base_url + "/", timeout=REQUEST_TIMEOUT)
    assets = parse_home_page(answer.text)
    if assets.build_id is None:
        raise BenchError("the simulator's home page has no build id")
    return replace(BrowserProfile.random(assets=assets), build_id=assets.build_id)


class DirectClient:
    """Does chat2api's upstream calls itself, against the simulator."""

    def __init__(
        self,
        session: AsyncSession[Response],
        base_url: str,
        token: str,
        profile: BrowserProfile,
    ) -> None:
        self._session = session
        self._base = base_url
        self._headers = {
            "Authorization": f"Bearer {token}",
            "OAI-Device-Id": str(uuid.uuid5(uuid.NAMESPACE_URL, "bench:" + token)),
            "Content-Type": "application/json",
        }
        self._profile = profile

    async def _sentinel(self) -> dict[str, str]:
        config = build_config(self._profile)
        answer = await self._session.post(
            self._base + "/backend-api/sentinel/chat-requirements",
            data=orjson.dumps({"p": requirements_token(config)}),
            headers=self._headers,
            timeout=REQUEST_TIMEOUT,
        )
        if answer.status_code != 200:
            raise BenchError(f"chat-requirements answered HTTP {answer.status_code}")
        data = orjson.loads(answer.content)
        headers = self._headers | {
            "OpenAI-Sentinel-Chat-Requirements-Token": data["token"],
            "Accept": "text/event-stream",
        }
        pow_ = data.get("proofofwork") or {}
        if pow_.get("required"):
            headers["OpenAI-Sentinel-Proof-Token"] = solve(
                pow_["seed"], pow_["difficulty"], config, time_budget=10
            )
        return headers

    def _body(self, text: str) -> bytes:
        message = {
            "id": str(uuid.uuid4()),
            "author": {"role": "user"},
            "content": {"content_type": "text", "parts": [text]},
        }
        return orjson.dumps(
            {
                "action": "next",
                "messages": [message],
                "model": MODEL,
                "parent_message_id": str(uuid.uuid4()),
                "supported_encodings": ["v1"],
                "history_and_training_disabled": True,
            }
        )

    async def _open(self, text: str) -> Response:
        headers = await self._sentinel()
        answer = await self._session.post(
            self._base + "/backend-api/conversation",
            data=self._body(text),
            headers=headers,
            timeout=REQUEST_TIMEOUT,
            stream=True,
        )
        if answer.status_code != 200:
            await answer.aclose()
            raise BenchError(f"conversation answered HTTP {answer.status_code}")
        return answer

    async def complete(self, text: str) -> tuple[float, str]:
        """Seconds for the three upstream calls and the answer decoded, and its text.

        A direct client wants the answer, so it decodes the stream as a minimal
        client must (the same work ``stream`` does); chat2api does that too.
        """
        result = await self.stream(text)
        if not result.done:
            raise BenchError("the upstream stream did not end with [DONE]")
        return result.total, result.text

    async def stream(self, text: str) -> StreamResult:
        """One stream; TTFB counts from the requirements call to the first answer text."""
        started = time.perf_counter()
        answer = await self._open(text)
        decoder = SSEDecoder()
        parts: list[str] = []
        ttfb = 0.0
        done = False
        path = op = ""
        try:
            async for chunk in answer.aiter_content():
                for event in decoder.feed(chunk):
                    if event.data == "[DONE]":
                        done = True
                        continue
                    if event.event != "delta":
                        continue
                    delta = orjson.loads(event.data)
                    path, op = delta.get("p", path), delta.get("o", op)
                    if op == "patch":
                        pieces = [
                            _as_text(d.get("v"))
                            for d in delta["v"]
                            if d.get("p") == TEXT_PART and d.get("o") == "append"
                        ]
                    elif path == TEXT_PART and op == "append":
                        pieces = [_as_text(delta.get("v"))]
                    else:
                        continue
                    if pieces and not parts:
                        ttfb = time.perf_counter() - started
                    parts.extend(pieces)
        finally:
            await answer.aclose()
        return StreamResult(ttfb, time.perf_counter() - started, "".join(parts), done)


class OpenAIClient:
    """Sends the same load to chat2api as OpenAI chat completions."""

    def __init__(self, session: AsyncSession[Response], base_url: str, token: str) -> None:
        self._session = session
        self._url = base_url + "/v1/chat/completions"
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def _body(self, text: str, stream: bool) -> bytes:
        return orjson.dumps(
            {"model": MODEL, "messages": [{"role": "user", "content": text}], "stream": stream}
        )

    async def complete(self, text: str) -> tuple[float, str]:
        """Seconds for one non-stream completion, and its answer text."""
        started = time.perf_counter()
        answer = await self._session.post(
            self._url,
            data=self._body(text, False),
            headers=self._headers,
            timeout=REQUEST_TIMEOUT,
        )
        elapsed = time.perf_counter() - started
        if answer.status_code != 200:
            raise BenchError(f"chat2api answered HTTP {answer.status_code}: {answer.text[:200]}")
        content = orjson.loads(answer.content)["choices"][0]["message"]["content"]
        return elapsed, content if isinstance(content, str) else ""

    async def stream(self, text: str) -> StreamResult:
        """One stream; TTFB counts from sending the request to the first content chunk."""
        started = time.perf_counter()
        answer = await self._session.post(
            self._url,
            data=self._body(text, True),
            headers=self._headers,
            timeout=REQUEST_TIMEOUT,
            stream=True,
        )
        decoder = SSEDecoder()
        parts: list[str] = []
        ttfb = 0.0
        done = False
        try:
            if answer.status_code != 200:
                raise BenchError(f"chat2api answered HTTP {answer.status_code}")
            async for chunk in answer.aiter_content():
                for event in decoder.feed(chunk):
                    if event.data == "[DONE]":
                        done = True
                        continue
                    data = orjson.loads(event.data)
                    if "choices" not in data:
                        raise BenchError(f"chat2api sent an error event: {event.data[:200]}")
                    if not data["choices"]:
                        continue
                    content = data["choices"][0]["delta"].get("content")
                    if isinstance(content, str) and content:
                        if not parts:
                            ttfb = time.perf_counter() - started
                        parts.append(content)
        finally:
            await answer.aclose()
        return StreamResult(ttfb, time.perf_counter() - started, "".join(parts), done)


# --------------------------------------------------------------------------- processes


class ProcessWatch:
    """CPU seconds and RSS of a process and its descendants (e.g. PoW workers)."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc = proc

    def _tree(self) -> list[psutil.Process]:
        try:
            return [self.proc, *self.proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        """User + system CPU seconds used so far by the whole tree."""
        total = 0.0
        for proc in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def rss(self) -> int:
        """Resident bytes of the main process alone."""
        return int(self.proc.memory_info().rss)

    def shared(self) -> int:
        """Of :meth:`rss`, the pages backed by files (shared libraries) or shared memory."""
        return int(getattr(self.proc.memory_info(), "shared", 0))

    def connections(self, upstream_port: int) -> tuple[int, int]:
        """Established TCP connections of the main process: (to ``upstream_port``, others)."""
        upstream = other = 0
        for conn in self.proc.net_connections(kind="tcp"):
            if conn.status != psutil.CONN_ESTABLISHED:
                continue
            if conn.raddr and conn.raddr.port == upstream_port:
                upstream += 1
            else:
                other += 1
        return upstream, other

    def tree_memory(self) -> int:
        """Bytes the whole tree holds as a container limit counts them: the sum of PSS.

        PSS charges a page shared by k processes 1/k to each, so pages the
        server shares with its forked workers are counted once, not k times.
        """
        total = 0
        for proc in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += int(getattr(proc.memory_full_info(), "pss", 0))
        return total

    def children_rss(self) -> int:
        """Resident bytes of the descendants (0 when none started)."""
        total = 0
        for proc in self._tree()[1:]:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total


@dataclass
class RssSampler:
    """Samples a process's RSS in a thread every ``interval`` seconds; keeps the peak.

    ``peak_private`` is the peak of the part not backed by files (RSS less
    shared library and shared memory pages): the memory the process alone
    holds. ``peak_tree`` is the peak of the whole tree's PSS (``ProcessWatch.tree_memory``).
    """

    proc: psutil.Process
    interval: float = 0.1
    peak: int = 0
    peak_private: int = 0
    peak_tree: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.NoSuchProcess):
                info = self.proc.memory_info()
                self.peak = max(self.peak, info.rss)
                self.peak_private = max(self.peak_private, info.rss - getattr(info, "shared", 0))
                self.peak_tree = max(self.peak_tree, ProcessWatch(self.proc).tree_memory())
                self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    """The median, NaN for no values."""
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> str:
    """Seconds shown as milliseconds."""
    return f"{seconds * 1000:.1f}"


def mib(size: float) -> str:
    """Bytes shown as MiB."""
    return f"{size / 2**20:.1f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table, first column left-aligned, the others right-aligned."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        cells = [
            str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def machine_line() -> str:
    """CPU count and load average, printed before a run."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"cpus: {os.cpu_count()}, load average before: {load}, python {sys.version.split()[0]}"
