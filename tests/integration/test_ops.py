"""Operating chat2api: --version, /health and /ready, the start-up log block."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys

import httpx2 as httpx
import pytest

from chat2api import __version__
from chat2api.sim import SimServer
from servers import ServiceFactory

ADMIN_KEY = "ops-admin-key-1234"
CODE = "ops-code-5678"


def dead_url() -> str:
    """An http URL on a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_version_flag() -> None:
    """``chat2api --version`` prints the version and exits 0."""
    result = subprocess.run(
        [sys.executable, "-m", "chat2api", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"chat2api {__version__}"


def test_health_and_ready_outside_the_prefix(make_service: ServiceFactory, sim: SimServer) -> None:
    """/health and /ready answer at the root with API_PREFIX set, without a key or a secret."""
    service = make_service(API_PREFIX="hidden", AUTHORIZATION=CODE, ADMIN_KEY=ADMIN_KEY)
    health = httpx.get(service.base_url + "/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "version": __version__}
    ready = httpx.get(service.base_url + "/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"store": "ok", "upstream": "ok"}}
    for body in (health.text, ready.text):
        assert CODE not in body and ADMIN_KEY not in body and sim.base_url not in body
    assert httpx.get(service.base_url + "/hidden/health").status_code == 404
    assert httpx.get(service.base_url + "/v1/models").status_code == 404  # the API moved


def test_ready_names_an_unreachable_upstream(make_service: ServiceFactory) -> None:
    """With the upstream down, /ready is 503 naming it; /health still answers 200."""
    service = make_service(CHATGPT_BASE_URL=dead_url())
    ready = httpx.get(service.base_url + "/ready", timeout=30)
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "not_ready",
        "checks": {"store": "ok", "upstream": "unreachable"},
    }
    assert httpx.get(service.base_url + "/health").status_code == 200


def test_ready_with_the_gateway_on(make_service: ServiceFactory, sim: SimServer) -> None:
    """The gateway's catch-all does not take /health and /ready over."""
    service = make_service(ENABLE_GATEWAY="true")
    assert httpx.get(service.base_url + "/health").json()["status"] == "ok"
    assert httpx.get(service.base_url + "/ready").status_code == 200


def test_startup_block_shows_settings_without_secrets(
    make_service: ServiceFactory, sim: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    """One start-up record: version, store, protocol, base URL, settings; secrets fingerprinted."""
    caplog.set_level(logging.INFO, logger="chat2api")
    proxy_password = "proxy-pass-9876"
    make_service(
        AUTHORIZATION=CODE,
        ADMIN_KEY=ADMIN_KEY,
        EXPORT_PROXY_URL=f"http://user:{proxy_password}@127.0.0.1:9",
        UPSTREAM_PROTOCOL="e2",
    )
    (block,) = [r.getMessage() for r in caplog.records if "starting" in r.getMessage()]
    assert block.startswith(f"chat2api {__version__} starting")
    assert "SQLiteStore(" in block
    assert f"upstream: {sim.base_url} (protocol e2" in block
    assert "UPSTREAM_PROTOCOL=e2" in block
    assert "RETRY_TIMES=3" in block
    assert "ADMIN_KEY=ops-…" in block
    for secret in (ADMIN_KEY, CODE, proxy_password):
        assert secret not in block
    assert "@127.0.0.1:9" in block  # the proxy's host stays readable


def test_user_agents_and_impersonate_lists_are_read() -> None:
    """USER_AGENTS takes a list literal (agents hold commas); IMPERSONATE a comma list."""
    from chat2api.settings import SettingsError, load_settings

    agents = '["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)", "B/1"]'
    settings = load_settings(
        {"USER_AGENTS": agents, "IMPERSONATE": "chrome, safari"}, env_file=None
    )
    assert settings.user_agents == [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)",
        "B/1",
    ]
    assert settings.impersonate_list == ["chrome", "safari"]
    one = load_settings({"USER_AGENTS": "Only/1.0 (a, b)"}, env_file=None)
    assert one.user_agents == ["Only/1.0 (a, b)"]
    with pytest.raises(SettingsError, match="USER_AGENTS"):
        load_settings({"USER_AGENTS": "[broken"}, env_file=None)
