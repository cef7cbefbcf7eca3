"""Running the simulator: `serve()` (blocking, for the CLI) and `SimServer` (a thread, for tests).

Why uvicorn's **h11** protocol and not httptools: curl_cffi impersonating Chrome
sends `Connection: Upgrade, HTTP2-Settings` + `Upgrade: h2c` on plain-http
requests. llhttp (behind httptools) then stops parsing at the end of the headers
and treats the rest as upgraded-protocol bytes, so uvicorn hands the app an
EMPTY body. h11 only switches protocols if the server answers 101, so it reads
the body normally (tests/sim/test_server.py proves both the raw-socket and the
curl_cffi cases). uvloop is used for the event loop when installed.

It listens through ``chat2api.listen.acceptors``, several listeners on one
socket, so that a burst of new connections is accepted at once, as a real
edge server takes them (see that module).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from types import TracebackType
from typing import Self

import uvicorn

from chat2api.listen import BACKLOG, acceptors, listening_socket
from chat2api.sim.app import SimApp, create_sim_app
from chat2api.sim.config import SimConfig
from chat2api.sim.state import SimState

DEFAULT_PORT = 5006  # chat2api itself defaults to 5005


class _DropUpgradeWarning(logging.Filter):
    """uvicorn warns once per h2c request; under benchmark load that floods the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Unsupported upgrade request."


def _uvicorn_config(app: SimApp, host: str, port: int) -> uvicorn.Config:
    logging.getLogger("uvicorn.error").addFilter(_DropUpgradeWarning())
    try:
        import uvloop  # noqa: F401  (only probing availability)

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http="h11",
        loop=loop,
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=30,
        backlog=BACKLOG,
    )


def serve(
    config: SimConfig | None = None, host: str = "127.0.0.1", port: int = DEFAULT_PORT
) -> None:
    """Serve the simulator until interrupted (Ctrl-C / SIGTERM)."""
    app = create_sim_app(config)
    sockets = acceptors(listening_socket(host, port))
    try:
        uvicorn.Server(_uvicorn_config(app, host, port)).run(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()


class ThreadedServer:
    """A uvicorn server on 127.0.0.1 and an ephemeral port, in a background thread.

    A context manager: entering starts it and waits until it serves. The
    simulator uses it, and so do the tests for chat2api itself.
    """

    def __init__(
        self, config: uvicorn.Config, host: str = "127.0.0.1", name: str = "server"
    ) -> None:
        self.host = host
        self.name = name
        self._sockets = acceptors(listening_socket(host, 0))
        self.port: int = self._sockets[0].getsockname()[1]
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=self._sockets))

    def start(self, timeout: float = 20.0) -> Self:
        """Start the thread and wait until the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask the server to exit and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=20)
        for sock in self._sockets:
            sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SimServer(ThreadedServer):
    """The simulator in a background thread (see ``ThreadedServer``).

    `state` is the live `SimState` (counters, recorded requests, config).
    """

    def __init__(self, config: SimConfig | None = None, host: str = "127.0.0.1") -> None:
        """Create (not start) a server for `config`."""
        self.app = create_sim_app(config)
        super().__init__(_uvicorn_config(self.app, host, 0), host, "chat2api-sim")

    @property
    def state(self) -> SimState:
        """The running simulator's state."""
        state: SimState = self.app.state.sim
        return state
