"""The event loops a transport-level test runs on, for anyio's pytest plugin."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(
    name="anyio_backend",
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ],
)
def both_loops(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """The plain asyncio loop, and uvloop (the loop the served app runs on).

    A test module takes it with ``from loops import both_loops``.
    """
    backend: tuple[str, dict[str, Any]] = request.param
    return backend
