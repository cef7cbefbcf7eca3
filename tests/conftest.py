"""Shared fixtures: the simulator and chat2api on 127.0.0.1 ephemeral ports."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

sys.path.insert(0, str(Path(__file__).parent))

from chat2api.sim import SimServer, mint_access_token
from secretgrep import SecretGrep
from servers import ServiceFactory, ServiceServer, close_clients

ERAS = ("e3-strict", "e2")
"""The upstream eras a module with ``ALL_ERAS = True`` runs in, each test once per era.

``e3-strict`` answers E2's conversation POST with 403 "unusual activity" (the
2026 upstream); chat2api meets it with the default ``UPSTREAM_PROTOCOL=auto``.
``e2`` has no E3 endpoint; chat2api is set to ``e2`` (the auto fallback has
its own tests).
"""
PROTOCOL_FOR_ERA = {"e3-strict": "auto", "e2": "e2"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the tests of ``ALL_ERAS`` modules that reach the simulator in every era."""
    if "era" in metafunc.fixturenames and getattr(metafunc.module, "ALL_ERAS", False):
        metafunc.parametrize("era", ERAS, indirect=True, scope="module")


@pytest.fixture(scope="module")
def era(request: pytest.FixtureRequest) -> str | None:
    """The simulator's era for this module run, or ``None`` for its default (``e3``)."""
    value: str | None = getattr(request, "param", None)
    return value


def era_env(era: str | None) -> dict[str, str]:
    """The chat2api settings that go with the simulator's era."""
    return {"UPSTREAM_PROTOCOL": PROTOCOL_FOR_ERA[era]} if era else {}


@pytest.fixture(scope="session")
def sim() -> Iterator[SimServer]:
    """One simulator for the session; tests get it reset (see ``fresh_sim``)."""
    with SimServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _no_secrets_in_logs() -> Iterator[None]:
    """Every log line of every test, chat2api's own at DEBUG, is searched for tokens."""
    grep = SecretGrep()
    root, ours = logging.getLogger(), logging.getLogger("chat2api")
    level = ours.level
    ours.setLevel(logging.DEBUG)
    root.addHandler(grep)
    try:
        yield
    finally:
        root.removeHandler(grep)
        ours.setLevel(level)
    assert grep.leaks == [], f"a token was logged by {grep.leaks}"


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
    era = request.getfixturevalue("era") if "era" in request.fixturenames else None
    if era is not None:
        server.state.config = config.patched({"era": era})
    yield
    server.state.config = config
    server.state.reset()


@pytest.fixture
def make_service(
    sim: SimServer, era: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceFactory]:
    """Start chat2api against the simulator with extra env settings; stopped at teardown."""
    started: list[ServiceServer] = []

    def factory(**env: Any) -> ServiceServer:
        merged = (
            {"CHATGPT_BASE_URL": sim.base_url} | era_env(era) | {k: str(v) for k, v in env.items()}
        )
        server = ServiceServer(merged, tmp_path_factory.mktemp("data")).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def services(
    sim: SimServer, era: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServiceServer]]:
    """chat2api asking the upstream for the v1 delta format, and for legacy snapshots."""
    out = {
        enc: ServiceServer(
            {"CHATGPT_BASE_URL": sim.base_url, "UPSTREAM_ENCODING": enc, "RETRY_TIMES": "0"}
            | era_env(era),
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


# --- headless Debian Chromium for the page tests (tests/browser, tests/gateway) ---------
# Debian's /usr/bin/chromium (.ci/run installs it); Playwright never downloads a
# browser here, and a missing one fails these tests rather than skipping them.

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium for the module."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page_errors() -> list[str]:
    """Script exceptions and console errors of the test's tab."""
    return []


@pytest.fixture
def page(browser: Browser, page_errors: list[str]) -> Iterator[Page]:
    """A fresh tab in its own context (no cookies, no storage) reporting its errors."""
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    tab.on("pageerror", lambda exc: page_errors.append(str(exc)))
    tab.on("console", lambda msg: page_errors.append(msg.text) if msg.type == "error" else None)
    yield tab
    context.close()
