"""Run chat2api on 127.0.0.1 and an ephemeral port, in a thread, for tests and benchmarks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import uvicorn

from chat2api.app import create_app
from chat2api.connections import server_options
from chat2api.settings import Settings, load_settings
from chat2api.sim import SimServer
from chat2api.sim.server import ThreadedServer
from chat2api.store import Account


class ServiceServer(ThreadedServer):
    """chat2api itself over real loopback sockets; a context manager."""

    def __init__(self, env: dict[str, Any], data_dir: Path) -> None:
        merged = {"DATA_DIR": str(data_dir), "POW_WORKERS": "0"} | env
        self.settings: Settings = load_settings(merged, env_file=None)
        self.app = create_app(self.settings)
        config = uvicorn.Config(
            self.app,
            loop="asyncio",
            **server_options(self.settings),  # httptools with the connection guard, as served
            lifespan="on",
            access_log=False,
            log_level="warning",
        )
        super().__init__(config, name="chat2api-test")

    @property
    def openai_base_url(self) -> str:
        """What an OpenAI SDK takes as ``base_url``."""
        return f"{self.base_url}{self.settings.prefix_path}/v1"


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


SENTINEL_START = ("/chat-requirements", "/chat-requirements/prepare")
"""Path ends of the first sentinel call of an attempt, E2 and E3."""


def bearers(sim: SimServer, *path_suffixes: str) -> list[str]:
    """The bearer token of every simulator request whose path ends so, in order.

    ``*SENTINEL_START`` gives every attempt, ``/conversation`` every one
    that got past the sentinel (``/f/conversation`` in E3).
    """
    return [
        r["headers"].get("authorization", "").removeprefix("Bearer ")
        for r in sim.state.requests
        if r["path"].endswith(path_suffixes)
    ]


def speaks_e3(sim: SimServer) -> bool:
    """Whether chat2api (auto or e3) sends over E3 to the simulator in its current era."""
    return bool(sim.state.config.era != "e2")


def send_path(sim: SimServer, prefix: str = "/backend-api") -> str:
    """The conversation POST's path in the simulator's era."""
    return prefix + ("/f/conversation" if speaks_e3(sim) else "/conversation")


def sentinel_path(sim: SimServer, prefix: str = "/backend-api") -> str:
    """The path of an attempt's first sentinel call in the simulator's era."""
    return prefix + "/sentinel/chat-requirements" + ("/prepare" if speaks_e3(sim) else "")


def sentinel_rounds(sim: SimServer) -> int:
    """How many sentinel rounds (one per attempt) the simulator saw, either era."""
    stats = sim.state.stats
    return int(stats.requirements + stats.prepares)
