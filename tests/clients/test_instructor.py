"""``instructor`` (TOOLS and JSON_SCHEMA modes) against chat2api.

instructor caps ``jiter`` below what the ``openai`` of requirements-dev.lock
needs, so it runs in a venv of its own, installed from ``instructor.lock``
(pinned, from PyPI) on first use and kept in ``tests/clients/.venv-instructor``.
"""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

from chat2api.sim import SimServer, mint_access_token
from chat2api.sim.shaped import schema_instance
from servers import ServiceServer

HERE = Path(__file__).parent
VENV = HERE / ".venv-instructor"
LOCK = HERE / "instructor.lock"


@pytest.fixture(scope="module")
def instructor_python() -> Path:
    """The Python of instructor's venv, (re)installed when the lock is newer."""
    python = VENV / "bin" / "python"
    stamp = VENV / "installed.lock"
    if not stamp.is_file() or stamp.read_text() != LOCK.read_text():
        venv.create(VENV, with_pip=True, clear=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(LOCK)],
            check=True,
            timeout=600,
            env=os.environ | {"PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )
        stamp.write_text(LOCK.read_text())
    return python


@pytest.mark.timeout(900)  # the first run installs instructor's venv
def test_instructor_modes(app: ServiceServer, sim: SimServer, instructor_python: Path) -> None:
    """TOOLS (a forced call) and JSON_SCHEMA (response_format) both give the User object."""
    result = subprocess.run(
        [str(instructor_python), str(HERE / "instructor_run.py")],
        env=os.environ
        | {"OPENAI_BASE_URL": app.openai_base_url, "OPENAI_API_KEY": mint_access_token()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)
    assert out["versions"] == {"instructor": "1.17.0", "openai": "3.3.0"}
    expected = schema_instance(
        {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}
    )
    assert out["tool_call"] == expected  # TOOLS: a call forced by tool_choice
    assert out["json_schema_mode"] == expected  # JSON_SCHEMA: response_format
