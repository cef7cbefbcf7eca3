"""The strict tooling passes on the whole package (part of the test command)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_ruff_check() -> None:
    """ruff finds nothing to complain about."""
    result = _run("ruff", "check", "src", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    """The code is formatted as ruff format would."""
    result = _run("ruff", "format", "--check", "src", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_strict() -> None:
    """mypy --strict accepts the package."""
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_secret_grep_catches_tokens_in_messages_and_tracebacks() -> None:
    """The log grep every test runs under flags a logged token, in a message or a traceback."""
    import logging

    from chat2api.sim import mint_access_token, mint_refresh_token
    from chat2api.store import fingerprint
    from secretgrep import SecretGrep

    grep = SecretGrep()
    log = logging.getLogger("chat2api.test-grep")
    log.addHandler(grep)
    log.propagate = False
    try:
        token = mint_access_token()
        log.warning("fine: %s", fingerprint(token))
        assert grep.leaks == []
        log.warning("leaked %s", token)
        log.warning("leaked %s", mint_refresh_token())
        try:
            raise ValueError(f"bad token {token}")
        except ValueError:
            log.exception("boom")
    finally:
        log.removeHandler(grep)
    assert grep.leaks == ["chat2api.test-grep (WARNING)"] * 2 + ["chat2api.test-grep (ERROR)"]
