"""Shared fixtures: the simulator and chat2api on 127.0.0.1 ephemeral ports."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from chat2api.sim import SimServer, mint_access_token
from servers import ServiceFactory, ServiceServer, close_clients


@pytest.fixture(scope="session")
def sim() -> Iterator[SimServer]:
    """One simulator for the session; tests get it reset (see ``fresh_sim``)."""
    with SimServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _close_sdk_clients() -> Iterator[None]:
    """SDK clients a test made are closed at its end, not left to the garbage collector."""
    yield
    close_clients()


@pytest.fixture(autouse=True)
def fresh_sim(request: pytest.FixtureRequest) -> Iterator[None]:
    """Reset counters, records and config of the shared simulator around each test."""
    if "sim" not in request.fixturenames:
        yield
        return
    server: SimServer = request.getfixturevalue("sim")
    config = server.state.config
    server.state.reset()
    yield
    server.state.config = config
    server.state.reset()


@pytest.fixture
def make_service(
    sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceFactory]:
    """Start chat2api against the simulator with extra env settings; stopped at teardown."""
    started: list[ServiceServer] = []

    def factory(**env: Any) -> ServiceServer:
        merged = {"CHATGPT_BASE_URL": sim.base_url} | {k: str(v) for k, v in env.items()}
        server = ServiceServer(merged, tmp_path_factory.mktemp("data")).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def services(
    sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServiceServer]]:
    """chat2api asking the upstream for the v1 delta format, and for legacy snapshots."""
    out = {
        enc: ServiceServer(
            {"CHATGPT_BASE_URL": sim.base_url, "UPSTREAM_ENCODING": enc, "RETRY_TIMES": "0"},
            tmp_path_factory.mktemp(enc),
        ).start()
        for enc in ("v1", "legacy")
    }
    yield out
    for server in out.values():
        server.stop()


@pytest.fixture(params=["v1", "legacy"])
def service(request: pytest.FixtureRequest, services: dict[str, ServiceServer]) -> ServiceServer:
    """chat2api in each upstream stream format (tests using it run once per format)."""
    return services[request.param]


@pytest.fixture(scope="session")
def token() -> str:
    """A valid AccessToken the simulator accepts."""
    return mint_access_token(plan="plus")
