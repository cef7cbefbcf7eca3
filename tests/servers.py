"""Run chat2api on 127.0.0.1 and an ephemeral port, in a thread, for tests and benchmarks."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import openai
import uvicorn

from chat2api.app import create_app
from chat2api.settings import Settings, load_settings
from chat2api.sim import SimServer
from chat2api.store import Account


class ServiceServer:
    """chat2api itself over real loopback sockets; a context manager."""

    def __init__(self, env: dict[str, Any], data_dir: Path) -> None:
        merged = {"DATA_DIR": str(data_dir), "POW_WORKERS": "0"} | env
        self.settings: Settings = load_settings(merged, env_file=None)
        self.app = create_app(self.settings)
        # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then,
        # and without it every keep-alive response waits ~40 ms for a delayed ACK.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            loop="asyncio",
            http="httptools",
            lifespan="on",
            access_log=False,
            log_level="warning",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="chat2api-test", daemon=True)

    @property
    def base_url(self) -> str:
        """Root URL of the service, without the API prefix."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """What an OpenAI SDK takes as ``base_url``."""
        return f"{self.base_url}{self.settings.prefix_path}/v1"

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def start(self, timeout: float = 20.0) -> ServiceServer:
        """Start and wait until the lifespan has run and the socket accepts."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("chat2api did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop the server and wait for its lifespan to close resources."""
        self._server.should_exit = True
        self._thread.join(timeout=20)
        self._sock.close()

    def __enter__(self) -> ServiceServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


ServiceFactory = Callable[..., "ServiceServer"]


_CLIENTS: list[openai.OpenAI] = []


def sdk(server: ServiceServer, api_key: str) -> openai.OpenAI:
    """The official SDK pointed at chat2api, with its own retries off (closed after the test)."""
    client = openai.OpenAI(base_url=server.openai_base_url, api_key=api_key, max_retries=0)
    _CLIENTS.append(client)
    return client


def close_clients() -> None:
    """Close every SDK client made by ``sdk`` (their pooled sockets with them)."""
    while _CLIENTS:
        _CLIENTS.pop().close()


def add_tokens(settings: Settings, *tokens: str) -> list[str]:
    """Add tokens to the store ``settings`` name, from outside, as the CLI does."""
    from chat2api.pool.pool import AccountPool
    from chat2api.pool.tokens import parse_token
    from chat2api.store import open_store
    from chat2api.upstream.auth import OAuthClient
    from chat2api.upstream.http import SessionPool

    async def run() -> list[str]:
        store = open_store(settings)
        try:
            pool = AccountPool(store, OAuthClient(SessionPool(), "http://127.0.0.1:9"))
            return await pool.add_tokens([parse_token(t) for t in tokens])
        finally:
            await store.close()

    return asyncio.run(run())


def stored_accounts(settings: Settings) -> dict[str, Account]:
    """The accounts in the store ``settings`` name, by id."""
    from chat2api.store import open_store

    async def run() -> dict[str, Account]:
        store = open_store(settings)
        try:
            return {a.id: a for a in await store.list_accounts()}
        finally:
            await store.close()

    return asyncio.run(run())


def bearers(sim: SimServer, path_suffix: str) -> list[str]:
    """The bearer token of every simulator request whose path ends so, in order.

    ``/chat-requirements`` gives every attempt, ``/conversation`` every one
    that got past the sentinel.
    """
    return [
        r["headers"].get("authorization", "").removeprefix("Bearer ")
        for r in sim.state.requests
        if r["path"].endswith(path_suffix)
    ]
