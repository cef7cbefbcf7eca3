"""Secrets at rest: a private data dir, tokens sealed by STORE_KEY, no client token in records."""

from __future__ import annotations

import re
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx

from chat2api.sim import SimServer, mint_access_token, mint_refresh_token
from chat2api.store import DB_FILE
from servers import ServiceFactory, add_tokens, sdk, send_path

CODE = "pool-code-at-rest"
LINK = re.compile(r"\((http://127\.0\.0\.1:\d+/v1/files/download/[\w-]+)\)")
USER = [{"role": "user", "content": "say exactly: ok"}]


def _bytes_at_rest(data_dir: Path) -> bytes:
    """Every byte of the store's files (database, WAL, shared memory)."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob(DB_FILE + "*")))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_dir_and_files_are_private(
    make_service: ServiceFactory, sim: SimServer, tmp_path: Path
) -> None:
    """The data dir is created 0700 and the store's files 0600."""
    data_dir = tmp_path / "fresh"
    service = make_service(AUTHORIZATION=CODE, OAUTH_BASE_URL=sim.base_url, DATA_DIR=data_dir)
    add_tokens(service.settings, mint_access_token(account_id="rest-perm"))
    sdk(service, CODE).chat.completions.create(model="gpt-4o", messages=USER)
    assert _mode(data_dir) == 0o700
    files = sorted(data_dir.glob(DB_FILE + "*"))
    assert [p.name for p in files][:2] == [DB_FILE, DB_FILE + "-shm"]
    assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}


def test_store_key_seals_tokens(make_service: ServiceFactory, sim: SimServer) -> None:
    """With STORE_KEY no token is readable in the store's files; a wrong key is a clear 503."""
    key = "a-store-key-of-32-characters-xyz"
    service = make_service(AUTHORIZATION=CODE, OAUTH_BASE_URL=sim.base_url, STORE_KEY=key)
    access = mint_access_token(account_id="rest-sealed")
    refresh = mint_refresh_token(account_id="rest-sealed-rt")
    add_tokens(service.settings, access, refresh)
    client = sdk(service, CODE)
    for _ in range(2):  # the RefreshToken account is exchanged and its AccessToken stored
        assert client.chat.completions.create(model="gpt-4o", messages=USER).choices
    at_rest = _bytes_at_rest(service.settings.data_dir)
    exchanged = [
        r["headers"]["authorization"].removeprefix("Bearer ")
        for r in sim.state.requests
        if r["path"] == send_path(sim)
    ]
    assert len(set(exchanged)) == 2
    for secret in [access, refresh, *exchanged]:
        assert secret.encode() not in at_rest
        assert secret[-24:].encode() not in at_rest
    assert b"sealed1:" in at_rest

    wrong = make_service(
        AUTHORIZATION=CODE,
        OAUTH_BASE_URL=sim.base_url,
        STORE_KEY="another-key-of-enough-length",
        DATA_DIR=service.settings.data_dir,
    )
    refused = httpx.post(
        wrong.openai_base_url + "/chat/completions",
        json={"model": "gpt-4o", "messages": USER},
        headers={"Authorization": f"Bearer {CODE}"},
    )
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "store_unavailable"
    assert "STORE_KEY" in refused.json()["error"]["message"]
    assert key not in refused.text


def test_client_token_not_in_download_records(
    make_service: ServiceFactory, sim: SimServer, token: str
) -> None:
    """A client's own AccessToken is not readable in a download record, and its link still works."""
    service = make_service()
    content = sdk(service, token).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "a red fox #sim:image"}]
    )
    (link,) = LINK.findall(content.choices[0].message.content or "")
    db = sqlite3.connect(service.settings.data_dir / DB_FILE)
    try:
        rows = db.execute("SELECT key, value FROM records WHERE kind = 'download'").fetchall()
    finally:
        db.close()
    assert len(rows) == 1
    key, value = rows[0]
    assert token not in value and token[-24:] not in value
    assert key not in link  # stored under the link's hash, not the link
    got = httpx.get(link)
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"


def test_unwritable_data_dir_is_one_line(tmp_path: Path) -> None:
    """`chat2api serve` with a DATA_DIR it cannot create says so in one line, no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "chat2api", "serve", "--host", "127.0.0.1", "--port", "0"],
        env={"DATA_DIR": "/sys/chat2api-data", "PYTHONMALLOC": "pymalloc", "PATH": "/usr/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "chat2api: cannot keep the store in DATA_DIR /sys/chat2api-data: Operation not permitted"
    ]
