"""The ``openai`` npm SDK (Node): stream, responses.create, chat.completions.parse (zod)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from chat2api.sim import SimServer, mint_access_token
from servers import ServiceServer

NODE_DIR = Path(__file__).parent / "node"


@pytest.mark.timeout(600)  # the first run installs the Node clients (npm ci)
def test_node_sdk(app: ServiceServer, sim: SimServer, node_modules: Path) -> None:
    """node/sdk.mjs gets the exact texts, usage, a completed response and the parsed object."""
    result = subprocess.run(
        ["node", "sdk.mjs"],
        cwd=NODE_DIR,
        env=os.environ
        | {"OPENAI_BASE_URL": app.openai_base_url, "OPENAI_API_KEY": mint_access_token()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["stream"]["text"] == "streamed from node"
    assert out["stream"]["usage"]["completion_tokens"] == 4
    assert out["responses"]["text"] == "responses from node"
    assert out["responses"]["status"] == "completed" and out["responses"]["id"].startswith("resp_")
    parsed = out["parse"]
    assert set(parsed) == {"name", "population"} and isinstance(parsed["population"], int)
    sent = sim.state.last_prompt()[0][1]
    assert "JSON Schema:" in sent and '"name":"city"' not in sent
