"""Simon Willison's ``llm`` CLI, configured for chat2api as an extra OpenAI model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chat2api.sim import SimServer, mint_access_token
from chat2api.sim.shaped import schema_instance
from servers import ServiceServer

LLM = str(Path(sys.executable).parent / "llm")


@pytest.fixture(scope="module")
def llm_home(app: ServiceServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An LLM_USER_PATH whose extra-openai-models.yaml names chat2api."""
    home = tmp_path_factory.mktemp("llm")
    (home / "extra-openai-models.yaml").write_text(
        "- model_id: chat2api\n"
        "  model_name: gpt-4o\n"
        f"  api_base: {app.openai_base_url}\n"
        "  supports_schema: true\n"
        "  supports_tools: true\n"
    )
    return home


def _llm(home: Path, *args: str) -> str:
    result = subprocess.run(
        [LLM, "-m", "chat2api", "--key", mint_access_token(), "--no-log", *args],
        env=os.environ | {"LLM_USER_PATH": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_prompt(llm_home: Path, sim: SimServer) -> None:
    """`llm "prompt"` prints the answer."""
    assert _llm(llm_home, "say exactly: hello from llm").strip() == "hello from llm"


def test_schema(llm_home: Path, sim: SimServer) -> None:
    """`llm --schema` sends the schema and prints JSON that fits it."""
    out = _llm(llm_home, "--schema", "name, age int", "Invent a dog. #sim:json=schema")
    sent = sim.state.last_prompt()[0][1]
    schema = json.loads(sent.split("JSON Schema:", 1)[1])
    assert set(schema["properties"]) == {"name", "age"}
    assert json.loads(out) == schema_instance(schema)


def test_tool(llm_home: Path, sim: SimServer) -> None:
    """`llm --functions` runs the tool the model called and sends its result back."""
    code = "def add(a: int, b: int) -> int:\n    'Add two integers.'\n    return a + b\n"
    out = _llm(llm_home, "--functions", code, "What is 2 + 3? #sim:call=add")
    assert out.strip()
    assert sim.state.stats.conversations == 2
    last = sim.state.last_prompt()[-1][1]
    assert last.startswith('<tool_result name="add"') and "\n84\n" in last
