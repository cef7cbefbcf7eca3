"""``chat2api tokens add|list|remove|refresh`` in a subprocess, on the store ``serve`` uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import pytest

from chat2api.sim import SimServer, mint_access_token, mint_refresh_token
from chat2api.store import account_key, fingerprint
from servers import ServiceFactory

# Variables of the developer's shell that would point the CLI elsewhere.
_CLEARED = ("REDIS_URL", "REDIS_PREFIX", "ADMIN_KEY", "API_PREFIX", "PROXY_URL", "COLUMNS")


class TokensCLI:
    """Runs ``python -m chat2api tokens …`` in ``tmp_path`` against one data dir."""

    def __init__(self, cwd: Path, oauth_base_url: str) -> None:
        self.cwd = cwd
        self.data_dir = cwd / "data"
        self.env = {k: v for k, v in os.environ.items() if k not in _CLEARED} | {
            "DATA_DIR": str(self.data_dir),
            "OAUTH_BASE_URL": oauth_base_url,
        }

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "chat2api", "tokens", *args],
            cwd=self.cwd,
            env=self.env,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=60,
        )


@pytest.fixture
def cli(tmp_path: Path, sim: SimServer) -> TokensCLI:
    """The tokens CLI on a fresh data dir, refreshing at the simulator."""
    return TokensCLI(tmp_path, sim.base_url)


def _listed(cli: TokensCLI) -> list[dict[str, object]]:
    result = cli("list", "--json")
    assert result.returncode == 0, result.stderr
    accounts: list[dict[str, object]] = json.loads(result.stdout)["accounts"]
    return accounts


def test_add_from_arguments_and_stdin(cli: TokensCLI) -> None:
    """Tokens from arguments and from stdin `-` (comments ignored) are added, repeats skipped."""
    access = mint_access_token()
    refresh = mint_refresh_token()
    from_args = cli("add", access)
    assert from_args.returncode == 0, from_args.stderr
    assert from_args.stdout.strip() == "added 1, skipped 0 (already in the pool)"

    pasted = f"# from my notes\n{refresh},ws-7  # team\n\n{access}\n"
    from_stdin = cli("add", "-", stdin=pasted)
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert from_stdin.stdout.strip() == "added 1, skipped 1 (already in the pool)"
    for output in (from_args.stdout + from_args.stderr, from_stdin.stdout + from_stdin.stderr):
        assert access not in output and refresh not in output
    assert [a["id"] for a in _listed(cli)] == [account_key(access), account_key(refresh, "ws-7")]
    assert (cli.data_dir / "chat2api.db").is_file()


def test_bad_tokens_exit_2_without_echo(cli: TokensCLI) -> None:
    """A non-token argument or stdin line exits 2 naming its position, never its text."""
    access = mint_access_token()
    secretish = "sk-proj-not-a-chatgpt-token-55aa"
    bad_arg = cli("add", access, secretish)
    assert bad_arg.returncode == 2
    assert "argument 2" in bad_arg.stderr
    assert secretish not in bad_arg.stderr + bad_arg.stdout
    bad_line = cli("add", "-", stdin=f"# c\n{access}\n{secretish}\n")
    assert bad_line.returncode == 2
    assert "line 3" in bad_line.stderr
    assert secretish not in bad_line.stderr + bad_line.stdout
    empty = cli("add", "-", stdin="# nothing here\n")
    assert empty.returncode == 2
    assert "no token" in empty.stderr
    mixed = cli("add", "-", access)
    assert mixed.returncode == 2
    assert _listed(cli) == []


def test_list_shows_fingerprints_not_tokens(cli: TokensCLI) -> None:
    """The table names accounts by id and fingerprint, with counts, and never prints a token."""
    access = mint_access_token(plan="plus")
    refresh = mint_refresh_token()
    assert cli("add", "-", stdin=f"{access}\n{refresh}\n").returncode == 0
    result = cli("list")
    assert result.returncode == 0, result.stderr
    assert "2 accounts: 2 active, 0 cooling, 0 dead" in result.stdout
    for token in (access, refresh):
        assert fingerprint(token) in result.stdout
        assert account_key(token) in result.stdout
        assert token not in result.stdout
    assert "plus" in result.stdout
    as_json = cli("list", "--json")
    for token in (access, refresh):
        assert token not in as_json.stdout
    assert json.loads(as_json.stdout)["counts"]["total"] == 2


def test_remove_by_id_or_fingerprint(cli: TokensCLI) -> None:
    """remove takes an id or a fingerprint (or its hash part); unknown exits 1; --all clears."""
    tokens = [mint_access_token() for _ in range(4)]
    assert cli("add", *tokens).returncode == 0
    by_id = cli("remove", account_key(tokens[0]))
    assert by_id.returncode == 0, by_id.stderr
    assert by_id.stdout.strip() == f"removed {account_key(tokens[0])} ({fingerprint(tokens[0])})"
    assert cli("remove", fingerprint(tokens[1])).returncode == 0
    assert cli("remove", fingerprint(tokens[2]).partition("…")[2]).returncode == 0
    assert [a["id"] for a in _listed(cli)] == [account_key(tokens[3])]

    unknown = cli("remove", account_key(tokens[0]))
    assert unknown.returncode == 1
    assert "No account" in unknown.stderr
    assert cli("remove").returncode == 2
    cleared = cli("remove", "--all")
    assert cleared.stdout.strip() == "removed 1 accounts"
    assert _listed(cli) == []


def test_refresh_against_the_simulator(cli: TokensCLI, sim: SimServer) -> None:
    """refresh --all exchanges every RefreshToken; plain refresh only those due; failures exit 1."""
    first, second = mint_refresh_token(), mint_refresh_token(plan="pro")
    assert cli("add", first, second, mint_access_token()).returncode == 0

    everything = cli("refresh", "--all")
    assert everything.returncode == 0, everything.stderr
    assert sim.state.stats.refreshes == 2
    assert everything.stdout.strip().endswith("refreshed 2 of 2")
    assert f"{account_key(first)} " in everything.stdout
    assert "2/2" in everything.stderr  # the progress bar, one step per account
    assert first not in everything.stdout + everything.stderr

    due = cli("refresh")  # both AccessTokens now last 10 days: nothing is due
    assert due.returncode == 0, due.stderr
    assert "nothing to refresh" in due.stdout
    assert sim.state.stats.refreshes == 2

    one = cli("refresh", account_key(second))
    assert one.returncode == 0, one.stderr
    assert sim.state.stats.refreshes == 3
    plans = [a["plan"] for a in _listed(cli)]
    assert plans[:2] == ["plus", "pro"]

    revoked = mint_refresh_token(state="revoked")
    assert cli("add", revoked).returncode == 0
    failing = cli("refresh", account_key(revoked))
    assert failing.returncode == 1
    assert "failed" in failing.stdout and "refused" in failing.stdout
    state = {a["id"]: a["state"] for a in _listed(cli)}
    assert state[account_key(revoked)] == "dead"


def test_cli_and_service_share_the_store(
    cli: TokensCLI, make_service: ServiceFactory, sim: SimServer
) -> None:
    """Accounts added by the CLI are seen at once by a running service on the same data dir."""
    service = make_service(
        ADMIN_KEY="k-shared", DATA_DIR=str(cli.data_dir), OAUTH_BASE_URL=sim.base_url
    )
    access = mint_access_token()
    assert cli("add", access).returncode == 0
    listing = httpx.get(
        f"{service.base_url}/tokens/api/accounts", headers={"Authorization": "Bearer k-shared"}
    ).json()
    assert [a["id"] for a in listing["accounts"]] == [account_key(access)]
    assert cli("remove", account_key(access)).returncode == 0
    listing = httpx.get(
        f"{service.base_url}/tokens/api/accounts", headers={"Authorization": "Bearer k-shared"}
    ).json()
    assert listing["accounts"] == []
