"""The request log: one line per request, X-Request-Id in and out, reasons, no secrets."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import openai
import pytest

from chat2api.api.requestlog import safe_path
from chat2api.logs import JsonFormatter
from chat2api.values import fingerprint
from servers import ServiceServer, sdk

ASK = [{"role": "user", "content": "say exactly: logged"}]
SERVE = [sys.executable, "-m", "chat2api", "serve", "--simulate"]


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Log records of the test, INFO and up."""
    caplog.set_level(logging.INFO)
    return caplog


def _request_lines(caplog: pytest.LogCaptureFixture, ids: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "chat2api.request" and r.fields["request_id"].startswith(ids)  # type: ignore[attr-defined]
    ]


def _wait_for(caplog: pytest.LogCaptureFixture, count: int, ids: str) -> list[logging.LogRecord]:
    """The request lines of the requests whose id starts with ``ids`` (not an earlier test's,
    whose line may be written after its client had the response)."""
    deadline = time.monotonic() + 5  # the line is written once the response has been sent
    while len(found := _request_lines(caplog, ids)) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return found


def _tagged() -> tuple[str, dict[str, str]]:
    """A request id prefix of this test's own, and the header that sends one."""
    tag = f"t{time.monotonic_ns()}"
    return tag, {"X-Request-Id": tag + "-1"}


def test_one_line_per_request(
    service: ServiceServer, token: str, lines: pytest.LogCaptureFixture
) -> None:
    """A completion logs one INFO line: method, path, status, duration, model, account, id."""
    raw = sdk(service, token).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=ASK
    )
    request_id = raw.headers["x-request-id"]
    assert request_id.startswith("req_") and len(request_id) == 36
    (record,) = _wait_for(lines, 1, request_id)
    assert record.levelno == logging.INFO
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["method"] == "POST" and fields["path"] == "/v1/chat/completions"
    assert fields["status"] == 200 and fields["model"] == "gpt-4o"
    assert fields["account"] == fingerprint(token) and fields["request_id"] == request_id
    assert isinstance(fields["duration_ms"], float) and fields["duration_ms"] > 0
    message = record.getMessage()
    assert message.startswith("POST /v1/chat/completions 200 ")
    assert f"account={fingerprint(token)}" in message and f"request_id={request_id}" in message
    assert token not in "\n".join(r.getMessage() for r in lines.records)


def test_client_request_id_is_kept(service: ServiceServer, token: str) -> None:
    """A client's X-Request-Id comes back as sent; a malformed one is replaced."""
    client = sdk(service, token)
    given = client.models.with_raw_response.list(extra_headers={"X-Request-Id": "trace-42.a"})
    assert given.headers["x-request-id"] == "trace-42.a"
    odd = client.models.with_raw_response.list(extra_headers={"X-Request-Id": "no spaces please"})
    assert odd.headers["x-request-id"].startswith("req_")


def test_error_reason_logged_once(
    service: ServiceServer, token: str, lines: pytest.LogCaptureFixture
) -> None:
    """A 400's code and message are in its request line, and in no other line."""
    tag, header = _tagged()
    with pytest.raises(openai.BadRequestError):
        sdk(service, token).chat.completions.create(
            model="gpt-4o", messages=ASK, logprobs=True, extra_headers=header
        )
    (record,) = _wait_for(lines, 1, tag)
    assert record.fields["status"] == 400  # type: ignore[attr-defined]
    assert record.fields["error_code"] == "unsupported_parameter"  # type: ignore[attr-defined]
    assert "error=unsupported_parameter: 'logprobs' is not supported" in record.getMessage()
    assert sum("'logprobs' is not supported" in r.getMessage() for r in lines.records) == 1


def test_mid_stream_failure_reason(
    service: ServiceServer, token: str, lines: pytest.LogCaptureFixture
) -> None:
    """A stream that fails after its first byte logs the failure with its request line."""
    tag, header = _tagged()
    with pytest.raises(openai.APIError):
        list(
            sdk(service, token).chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": "hi #sim:fault=stream_error"}],
                stream=True,
                extra_headers=header,
            )
        )
    (record,) = _wait_for(lines, 1, tag)
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["status"] == 200 and fields["error"].startswith("mid-stream: ")


def test_unknown_route_and_secret_paths(
    service: ServiceServer, lines: pytest.LogCaptureFixture
) -> None:
    """A 404 is logged with its path; download tokens in paths are logged as fingerprints."""
    secret = "dl-secret-token-0123456789abcdef"
    tag, header = _tagged()
    with httpx.Client(base_url=service.base_url, timeout=10, headers=header) as http:
        assert http.get(f"/v1/files/download/{secret}").status_code == 404
        assert http.get("/v1/nothing-here").status_code == 404
    records = _wait_for(lines, 2, tag)
    paths = [r.fields["path"] for r in records]  # type: ignore[attr-defined]
    assert paths == [f"/v1/files/download/<{fingerprint(secret)}>", "/v1/nothing-here"]
    assert records[1].fields["error_code"] == "unknown_url"  # type: ignore[attr-defined]
    ours = [r.getMessage() for r in lines.records if r.name.startswith("chat2api")]
    assert ours and secret not in "\n".join(ours)
    assert (
        safe_path("/p/gateway/api/seeds/abc/x") == f"/p/gateway/api/seeds/<{fingerprint('abc')}>/x"
    )


def test_json_formatter_keeps_fields() -> None:
    """LOG_FORMAT=json: one JSON object with the message and the request fields."""
    record = logging.LogRecord("chat2api.request", logging.INFO, __file__, 1, "GET / 200", (), None)
    record.fields = {"status": 200, "request_id": "req_1"}
    out = json.loads(JsonFormatter().format(record))
    assert out["message"] == "GET / 200" and out["level"] == "INFO"
    assert out["status"] == 200 and out["request_id"] == "req_1"
    assert out["logger"] == "chat2api.request" and out["time"].endswith("+00:00")


@pytest.mark.slow
def test_serve_logs_json_lines(tmp_path: Path) -> None:
    """``chat2api serve`` with LOG_FORMAT=json writes each request as a JSON line."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONMALLOC", "MALLOC_"))}
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [*SERVE, "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env | {"LOG_FORMAT": "json"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    response = http.get("/v1/models", headers={"X-Request-Id": "json-1"})
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.2)
        assert response.status_code == 200
        deadline = time.monotonic() + 5
        while "json-1" not in (text := (tmp_path / "serve.log").read_text()):
            assert time.monotonic() < deadline, text
            time.sleep(0.05)
        entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        (entry,) = [e for e in entries if e.get("request_id") == "json-1"]
        assert entry["path"] == "/v1/models" and entry["status"] == 200
        assert entry["logger"] == "chat2api.request" and entry["level"] == "INFO"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
