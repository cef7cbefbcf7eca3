"""``chat2api tokens import-legacy DIR``: the original's data/ folder into the store."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from test_tokens_cli import TokensCLI

from chat2api.sim import SimServer, mint_access_token, mint_refresh_token
from chat2api.store import account_key
from servers import ServiceServer, bearers, stored_accounts


@pytest.fixture
def cli(tmp_path: Path, sim: SimServer) -> TokensCLI:
    """The tokens CLI on a fresh data dir, refreshing at the simulator."""
    return TokensCLI(tmp_path, sim.base_url)


def legacy_folder(root: Path, files: dict[str, str]) -> Path:
    """A data/ folder of the original with ``files`` (name → text)."""
    folder = root / "legacy-data"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_import_a_full_folder(cli: TokensCLI, sim: SimServer, tmp_path: Path) -> None:
    """Tokens, error tokens, the refresh map and the seed map land in the store; users log in."""
    access = mint_access_token(account_id=f"leg-a-{time.time_ns()}")
    team = mint_access_token(account_id=f"leg-t-{time.time_ns()}", plan="team")
    refresh = mint_refresh_token(account_id=f"leg-r-{time.time_ns()}")
    broken = mint_access_token(account_id=f"leg-b-{time.time_ns()}")
    mapped = mint_access_token(account_id=f"leg-m-{time.time_ns()}")
    seed_only = mint_access_token(account_id=f"leg-s-{time.time_ns()}")
    folder = legacy_folder(
        tmp_path,
        {
            "token.txt": f"# accounts\n{access}\n\n{team},ws-9\n{refresh}\n{broken}\nnot-a-token\n",
            "error_token.txt": f"{broken}\n",
            "refresh_map.json": json.dumps({refresh: {"token": mapped, "timestamp": 1}}),
            "seed_map.json": json.dumps(
                {
                    "seed-alice": {"token": access, "conversations": ["c1"]},
                    "seed-new": {"token": seed_only, "conversations": []},
                    "seed-any": {"token": "", "conversations": []},
                }
            ),
            "fp_map.json": "{}",
        },
    )
    result = cli("import-legacy", str(folder))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "token.txt, error_token.txt, refresh_map.json, seed_map.json" in out
    assert "accounts: 5 added, 0 already in the pool" in out
    assert "1 marked dead (error_token.txt)" in out
    assert "AccessTokens carried over from refresh_map.json: 1" in out
    assert "gateway seeds bound: 3" in out
    assert "skipped 1 entries" in out
    assert "importing" in result.stderr  # the progress bar
    for token in (access, team, refresh, broken, mapped, seed_only):
        assert token not in out and token not in result.stderr

    env = {"CHATGPT_BASE_URL": sim.base_url, "ENABLE_GATEWAY": "true", "AUTO_SEED": "false"}
    with ServiceServer(env, cli.data_dir) as service:
        accounts = stored_accounts(service.settings)
        assert accounts[account_key(team, "ws-9")].workspace == "ws-9"
        dead = accounts[account_key(broken)]
        assert dead.status == "dead" and dead.dead_reason is not None
        assert "error_token.txt" in dead.dead_reason
        assert accounts[account_key(refresh)].access_token == mapped
        for seed, expected in (("seed-alice", access), ("seed-new", seed_only)):
            with httpx.Client(base_url=service.base_url, timeout=30) as browser:
                assert (
                    browser.get("/", params={"token": seed}, follow_redirects=False).status_code
                    == 303
                )
                answer = browser.post(
                    "/backend-api/sentinel/chat-requirements",
                    json={"p": "gAAAAACxyz"},
                    headers={"Authorization": "Bearer chat2api-gateway-session"},
                )
                assert answer.status_code == 200
            assert bearers(sim, "/chat-requirements")[-1] == expected
        with httpx.Client(base_url=service.base_url, timeout=30) as browser:
            assert browser.get("/", params={"token": "seed-any"}).status_code == 303
            assert browser.get("/", params={"token": "seed-unknown"}).status_code == 401

    again = cli("import-legacy", str(folder))
    assert again.returncode == 0, again.stderr
    assert "accounts: 0 added, 5 already in the pool" in again.stdout


def test_import_refuses_a_folder_without_the_files(cli: TokensCLI, tmp_path: Path) -> None:
    """A folder holding none of the original's files, or no folder, exits 2 saying so."""
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("import-legacy", str(empty))
    assert result.returncode == 2
    assert "holds none of token.txt" in result.stderr
    missing = cli("import-legacy", str(tmp_path / "nope"))
    assert missing.returncode == 2
    assert "is not a folder" in missing.stderr


def test_import_skips_a_broken_json_file(cli: TokensCLI, tmp_path: Path) -> None:
    """A seed map that is not JSON is named and skipped; the tokens still import."""
    access = mint_access_token()
    folder = legacy_folder(tmp_path, {"token.txt": access + "\n", "seed_map.json": "{not json"})
    result = cli("import-legacy", str(folder))
    assert result.returncode == 0, result.stderr
    assert "accounts: 1 added" in result.stdout
    assert "unreadable (not a JSON object), skipped: seed_map.json" in result.stdout
