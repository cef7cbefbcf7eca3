"""A client that leaves in the middle of its request body costs one INFO line, no traceback."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from servers import ServiceFactory

ADMIN_KEY = "body-cut-admin-key-11"


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses", "/tokens/api/accounts"])
def test_disconnect_mid_body_is_one_info_line(
    make_service: ServiceFactory, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    """Headers promise 100 kB, 20 bytes come, the client closes: INFO, and no error logged."""
    caplog.set_level(logging.INFO)
    service = make_service(ADMIN_KEY=ADMIN_KEY)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {ADMIN_KEY}\r\nContent-Length: 100000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", service.port)) as conn:
        conn.sendall(head.encode() + b'{"model": "gpt-4o", ')
        time.sleep(0.2)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(
        "client left" in r.getMessage() for r in caplog.records
    ):
        time.sleep(0.02)
    lines = [r for r in caplog.records if "client left" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO
    assert path in lines[0].getMessage()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
