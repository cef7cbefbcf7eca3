"""Configuration: env names of the original, validation at start, API_PREFIX, the CLI."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import openai
import pytest

from chat2api.cli import simulated
from chat2api.listen import ACCEPTORS
from chat2api.settings import Settings, SettingsError, load_settings
from chat2api.sim import mint_refresh_token
from servers import ServiceFactory, sdk


def test_defaults_follow_the_original() -> None:
    """With nothing set, the defaults are the original chat2api's."""
    settings = load_settings({}, env_file=None)
    assert settings.chatgpt_base_url == ["https://chatgpt.com"]
    assert settings.history_disabled is True
    assert settings.pow_difficulty == "000032"
    assert settings.retry_times == 3
    assert settings.conversation_only is False
    assert settings.enable_limit is True
    assert settings.api_prefix == ""


def test_lists_booleans_and_env_file(tmp_path: Path) -> None:
    """Comma lists and booleans parse; the environment overrides .env; flags override both."""
    env_file = tmp_path / ".env"
    env_file.write_text("RETRY_TIMES=5\nAPI_PREFIX=/from-file/\nHISTORY_DISABLED=false\n")
    settings = load_settings(
        {"PROXY_URL": "socks5://a:1, http://b:2", "API_PREFIX": "env"},
        env_file=env_file,
        overrides={"RETRY_TIMES": 1},
    )
    assert settings.proxy_url == ["socks5://a:1", "http://b:2"]
    assert settings.api_prefix == "env"
    assert settings.history_disabled is False
    assert settings.retry_times == 1


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"RETRY_TIMES": "many"}, "RETRY_TIMES 'many'"),
        ({"POW_DIFFICULTY": "hard"}, "POW_DIFFICULTY"),
        ({"CHATGPT_BASE_URL": "ftp://x"}, "CHATGPT_BASE_URL"),
        ({"PROXY_URL": "nonsense"}, "PROXY_URL"),
        ({"HISTORY_DISABLED": "perhaps"}, "HISTORY_DISABLED"),
        ({"UPSTREAM_ENCODING": "v2"}, "UPSTREAM_ENCODING"),
    ],
)
def test_bad_values_are_named(env: dict[str, str], needle: str) -> None:
    """A bad value fails at start with a message naming the variable."""
    with pytest.raises(SettingsError) as info:
        load_settings(env, env_file=None)
    assert needle in str(info.value)


def test_secret_values_are_not_echoed() -> None:
    """A rejected AUTH_KEY value is not printed back."""
    with pytest.raises(SettingsError) as info:
        load_settings({"AUTH_KEY": "", "AUTHORIZATION": "x", "RETRY_TIMES": "-1"}, env_file=None)
    assert "RETRY_TIMES" in str(info.value)


def test_api_prefix_moves_every_route(make_service: ServiceFactory, token: str) -> None:
    """API_PREFIX puts the API under /<prefix>; the bare paths are then 404."""
    service = make_service(API_PREFIX="secret-path")
    assert service.openai_base_url.endswith("/secret-path/v1")
    result = sdk(service, token).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "say exactly: prefixed"}]
    )
    assert result.choices[0].message.content == "prefixed"
    assert httpx.get(service.openai_base_url + "/models").status_code == 200
    bare = httpx.get(service.base_url + "/v1/models")
    assert bare.status_code == 404
    assert bare.json()["error"]["code"] == "unknown_url"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_rejects_bad_configuration(tmp_path: Path) -> None:
    """``chat2api serve`` with a bad variable exits 2 with a clear message."""
    env = os.environ | {"RETRY_TIMES": "lots"}
    result = subprocess.run(
        [sys.executable, "-m", "chat2api", "serve", "--port", str(_free_port())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "invalid configuration: RETRY_TIMES 'lots'" in result.stderr


def _listening_fds(pid: int, port: int) -> int:
    """How many of ``pid``'s file descriptors are the socket listening on ``port``."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(fields[9])
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):  # an fd closed meanwhile
            count += str(fd.readlink()).removeprefix("socket:[").rstrip("]") in inodes
    return count


def test_serve_on_a_taken_port_says_so(tmp_path: Path) -> None:
    """A port already in use: exit 1 with the address and the reason, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "chat2api", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_upstream_url_is_a_base_url() -> None:
    """Each setting with an http(s) URL default is a ``*_BASE_URL``: --simulate redirects it."""
    urls = []
    for field in Settings.model_fields.values():
        default = field.get_default(call_default_factory=True)
        values = default if isinstance(default, list) else [default]
        if any(isinstance(v, str) and v.startswith(("http://", "https://")) for v in values):
            urls.append(field.alias)
    assert "CHATGPT_BASE_URL" in urls and "OAUTH_BASE_URL" in urls
    assert [u for u in urls if not str(u).endswith("_BASE_URL")] == []


def test_simulated_settings_reach_only_the_simulator(tmp_path: Path) -> None:
    """``simulated`` sends base URLs to the simulator, drops proxies and Redis, moves the store."""
    real = load_settings(
        {
            "CHATGPT_BASE_URL": "https://a.example,https://b.example",
            "OAUTH_BASE_URL": "https://auth.example",
            "PROXY_URL": "http://127.0.0.1:1",
            "EXPORT_PROXY_URL": "http://127.0.0.1:2",
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "DATA_DIR": str(tmp_path / "real"),
            "RETRY_TIMES": "5",
        },
        env_file=None,
    )
    sim = simulated(real, "http://127.0.0.1:9", tmp_path / "scratch")
    for name, field in Settings.model_fields.items():
        if str(field.alias).endswith("_BASE_URL"):
            value = getattr(sim, name)
            assert value in ("http://127.0.0.1:9", ["http://127.0.0.1:9"]), field.alias
    assert sim.proxy_url == [] and sim.export_proxy_url is None and sim.redis_url is None
    assert sim.data_dir == tmp_path / "scratch"
    assert sim.retry_times == 5  # the rest is the user's


@pytest.mark.slow
def test_serve_simulate_one_command(tmp_path: Path) -> None:
    """``serve --simulate`` answers with no account and no network, in a throw-away store.

    The working directory's ``.env`` names a real store, Redis, a proxy and an
    OAuth server on the internet: none of them is used, a RefreshToken added
    while trying it is exchanged at the simulator, and the store is gone at exit.
    """
    admin_key = "k" * 32
    (tmp_path / ".env").write_text(
        "DATA_DIR=real-store\nREDIS_URL=redis://127.0.0.1:1/0\nPROXY_URL=http://127.0.0.1:1\n"
        f"OAUTH_BASE_URL=https://auth.invalid\nADMIN_KEY={admin_key}\n"
    )
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    command = [sys.executable, "-m", "chat2api", "serve", "--simulate"]
    proc = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env={
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTHONMALLOC", "MALLOC_")) and k not in Settings.model_fields
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-anything", max_retries=0
    )
    admin = {"Authorization": f"Bearer {admin_key}"}
    store = tmp_path / "store not found in the log"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                models = client.models.list()
                break
            except openai.APIConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert "gpt-4o" in [m.id for m in models]
        # Its port has ACCEPTORS listeners: a burst is accepted at once (chat2api.listen).
        assert _listening_fds(proc.pid, port) == ACCEPTORS
        result = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "say exactly: it works"}]
        )
        assert result.choices[0].message.content == "it works"
        base = f"http://127.0.0.1:{port}/tokens/api"
        added = httpx.post(
            f"{base}/accounts", headers=admin, json={"tokens": mint_refresh_token()}, timeout=10
        )
        assert added.json()["added"] == 1
        refreshed = httpx.post(f"{base}/refresh", headers=admin, timeout=30).json()
        assert [r["status"] for r in refreshed["results"]] == ["refreshed"]
        text = (tmp_path / "serve.log").read_text()
        assert f"listening on http://127.0.0.1:{port}" in text
        store = Path(re.search(r"store in (\S+);", text)[1])  # type: ignore[index]
        assert store.name.startswith("chat2api-simulate-") and (store / "chat2api.db").is_file()
        assert not (tmp_path / "real-store").exists() and not (tmp_path / "data").exists()
        # The server restarted itself in place with the C allocator, tuned (see cli.serve).
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        assert b"PYTHONMALLOC=malloc" in environ
        assert b"MALLOC_TOP_PAD_=0" in environ
        assert b"MALLOC_MMAP_THRESHOLD_=16384" in environ
    finally:
        client.close()
        proc.send_signal(signal.SIGTERM)  # as Docker stops it
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert not store.exists()  # the throw-away store went with the process
