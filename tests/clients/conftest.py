"""Real OpenAI clients against chat2api on the simulator (one chat2api per test module).

The Python clients come from requirements-dev.lock (instructor from its own
lock, in a venv of its own: see ``test_instructor.py``); the Node ones from
``node/package-lock.json``, installed here with ``npm ci`` on first use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from chat2api.sim import SimServer
from servers import ServiceServer

NODE_DIR = Path(__file__).parent / "node"
NPM_TIMEOUT = 600


@pytest.fixture(scope="module")
def app(sim: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceServer]:
    """chat2api on the simulator, shared by the tests of one module."""
    server = ServiceServer(
        {"CHATGPT_BASE_URL": sim.base_url, "RETRY_TIMES": "0"}, tmp_path_factory.mktemp("app")
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """``tests/clients/node/node_modules``, installed from the lock file when missing."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("npm/node are not installed: the Node clients (openai, Codex CLI) need them")
    installed = NODE_DIR / "node_modules" / ".package-lock.json"
    lock = NODE_DIR / "package-lock.json"
    if not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            check=True,
            timeout=NPM_TIMEOUT,
            env=os.environ | {"npm_config_update_notifier": "false"},
        )
    return NODE_DIR / "node_modules"
