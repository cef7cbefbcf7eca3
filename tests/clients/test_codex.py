"""The Codex CLI (``codex exec``, default configuration) against chat2api, offline.

Codex talks the Responses API (after trying its WebSocket transport, which
chat2api does not offer); the simulator plays the model: the first answer
calls Codex's ``exec`` tool with JavaScript that runs a shell command, the
second answers from the command's output.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from chat2api.sim import SimServer, mint_access_token
from servers import ServiceServer

JS = 'const r = await tools.exec_command({cmd: "echo hello-$((6*7))"}); text(r);'


@pytest.mark.timeout(600)  # the first run installs the Node clients (npm ci)
def test_codex_runs_a_shell_command(
    app: ServiceServer, sim: SimServer, node_modules: Path, tmp_path: Path
) -> None:
    """One turn: Codex runs the command the model asked for, and the model reads its output."""
    codex = node_modules / ".bin" / "codex"
    call = {"name": "exec", "arguments": {"input": JS}}
    sim.state.script("<tool_call>\n" + json.dumps(call) + "\n</tool_call>")
    sim.state.script("The command printed hello-42.")
    home = tmp_path / "codex-home"
    home.mkdir()
    result = subprocess.run(
        [
            str(codex),
            "exec",
            "--skip-git-repo-check",
            "-c",
            f'openai_base_url="{app.openai_base_url}"',
            "Print hello and the answer with echo.",
        ],
        cwd=tmp_path,
        env=os.environ | {"CODEX_HOME": str(home), "OPENAI_API_KEY": mint_access_token()},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("The command printed hello-42.")
    assert sim.state.stats.scripted == 2
    sent = sim.state.last_prompt()
    assert sent[-2][0] == "assistant" and '"name": "exec"' in sent[-2][1]
    assert sent[-1][1].startswith('<tool_result name="exec"') and "hello-42" in sent[-1][1]
    assert "exec_command" in sent[0][1]  # the tools Codex sent reached the model
