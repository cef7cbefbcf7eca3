"""The ``chat2api`` command: parses flags, wires parts, sets up logging."""

from __future__ import annotations

import asyncio
import atexit
import enum
import json
import logging
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
import uvicorn

from chat2api.admin.accounts import (
    RefreshResult,
    accounts_overview,
    add_tokens,
    find_account,
    parse_token_args,
    refresh_accounts,
    refresh_candidates,
    remove_account,
)
from chat2api.admin.offline import open_pool
from chat2api.errors import Chat2APIError
from chat2api.pool.pool import AccountPool
from chat2api.pool.tokens import TokenListError, parse_token_lines
from chat2api.settings import Settings, SettingsError, load_settings
from chat2api.store import store_errors

app = typer.Typer(
    help="An OpenAI-compatible API served through ChatGPT web accounts.",
    no_args_is_help=True,
    add_completion=False,
)


def _show_version(value: bool) -> None:
    if value:
        from chat2api import __version__

        typer.echo(f"chat2api {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """An OpenAI-compatible API served through ChatGPT web accounts."""


def _configure_logging(level: str, fmt: str = "text") -> None:
    from chat2api.logs import configure_logging

    configure_logging(level, fmt)


def _settings(env_file: Path, overrides: dict[str, Any]) -> Settings:
    try:
        return load_settings(os.environ, env_file=env_file, overrides=overrides)
    except SettingsError as exc:
        typer.echo(f"chat2api: invalid configuration: {exc}", err=True)
        raise typer.Exit(2) from exc


class Era(enum.StrEnum):
    """Send paths the simulator serves (`SimConfig.era`, docs/simulator.md)."""

    e2 = "e2"
    e3 = "e3"
    e3_strict = "e3-strict"


EraOption = Annotated[
    Era,
    typer.Option(
        help="Simulator era: e2 (no E3 endpoints), e3 (both paths), e3-strict (E2 send 403s)."
    ),
]


def _start_simulator(era: Era) -> str:
    """Run the built-in simulator on a free loopback port in a thread; its base URL."""
    from chat2api.sim import SimConfig, SimServer

    return SimServer(SimConfig(era=era.value)).start().base_url


def simulated(settings: Settings, sim_url: str, data_dir: Path) -> Settings:
    """The settings of ``serve --simulate``: nothing of it reaches the internet or the real store.

    Every ``*_BASE_URL`` setting is an upstream, so each (a new one too) points at
    the simulator, which serves them all; proxies would not reach a loopback
    simulator; the store is a throw-away SQLite under ``data_dir``, never
    ``REDIS_URL`` or ``DATA_DIR``, so accounts added while trying it stay there.
    """
    update: dict[str, Any] = {"data_dir": data_dir, "redis_url": None}
    for name, field in Settings.model_fields.items():
        alias = field.alias or ""
        value = getattr(settings, name)
        if alias.endswith("_BASE_URL"):
            update[name] = [sim_url] if isinstance(value, list) else sim_url
        elif alias.endswith("PROXY_URL"):
            update[name] = [] if isinstance(value, list) else None
    return settings.model_copy(update=update)


def _exit_on_signal(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


def _allocator_note() -> None:
    """Say once at start when Python's own allocator serves (docs/design.md, memory)."""
    if "PYTHONMALLOC" not in os.environ:
        logging.getLogger("chat2api").info(
            "PYTHONMALLOC is not set: memory freed after a burst of streams stays with the "
            "process; start with PYTHONMALLOC=malloc (scripts/serve and the Docker image do)"
        )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5005,
    simulate: Annotated[
        bool,
        typer.Option(
            "--simulate",
            help="Answer from the built-in offline simulator instead of chatgpt.com.",
        ),
    ] = False,
    env_file: Annotated[Path, typer.Option(help="Dotenv file read before the environment.")] = Path(
        ".env"
    ),
    data_dir: Annotated[
        Path | None, typer.Option(help="Where the SQLite store lives (DATA_DIR).")
    ] = None,
    workers_log_level: Annotated[
        str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING, ERROR.")
    ] = None,
    era: EraOption = Era.e3,
    workers: Annotated[
        str,
        typer.Option(
            help="Processes answering on the port, sharing the store: a number, or auto "
            "(one per CPU core).",
        ),
    ] = "1",
) -> None:
    """Start the OpenAI-compatible API server."""
    from chat2api.workers import run_workers, worker_count

    try:
        count = worker_count(workers)
    except ValueError as exc:
        _fail(str(exc), 2)
    from chat2api.heap import HEAP

    HEAP.tune(os.environ)  # before any stream: what each keeps resident (chat2api.heap)
    overrides: dict[str, Any] = {"DATA_DIR": data_dir, "LOG_LEVEL": workers_log_level}
    settings = _settings(env_file, overrides)
    _configure_logging(settings.log_level, settings.log_format)
    _allocator_note()
    if simulate:
        store_dir = data_dir
        if store_dir is None:  # a throw-away store, removed when the process ends
            store_dir = Path(tempfile.mkdtemp(prefix="chat2api-simulate-"))
            atexit.register(shutil.rmtree, store_dir, ignore_errors=True)
            # uvicorn re-raises SIGTERM once shut down: exit through atexit, not the default kill.
            signal.signal(signal.SIGTERM, _exit_on_signal)
        settings = simulated(settings, _start_simulator(era), store_dir)
        logging.getLogger("chat2api").info(
            "simulator at %s, store in %s; try: curl http://127.0.0.1:%d%s/v1/models",
            settings.chatgpt_base_url[0],
            store_dir,
            port,
            settings.prefix_path,
        )
    _check_data_dir(settings)
    from chat2api.app import create_app
    from chat2api.listen import BACKLOG, acceptors, listening_socket

    try:
        sockets = acceptors(listening_socket(host, port))
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    from chat2api.connections import raise_fd_limit, server_options

    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        loop="uvloop",
        **server_options(settings, fd_limit=raise_fd_limit()),  # httptools, guarded
        ws="none",  # no WebSocket routes: the protocol module is not even imported
        log_config=None,
        backlog=BACKLOG,
    )
    shown = f"[{host}]" if ":" in host else host
    logging.getLogger("chat2api").info(
        "listening on http://%s:%d (Ctrl+C to stop)", shown, sockets[0].getsockname()[1]
    )
    try:
        # Several listeners on one socket: a burst of clients is accepted at
        # once, not one per turn of the loop (chat2api.listen).
        if count == 1:
            uvicorn.Server(config).run(sockets=sockets)
        else:
            code = run_workers(count, lambda: uvicorn.Server(config).run(sockets=sockets))
            if code:
                raise typer.Exit(code)
    finally:
        for sock in sockets:
            sock.close()


@app.command()
def sim(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5006,
    era: EraOption = Era.e3,
) -> None:
    """Start the offline simulator of the ChatGPT web backend."""
    from chat2api.sim import SimConfig
    from chat2api.sim import serve as serve_sim

    _configure_logging("INFO")
    typer.echo(f"ChatGPT backend simulator ({era.value}) at http://{host}:{port} (Ctrl+C to stop)")
    serve_sim(SimConfig(era=era.value), host=host, port=port)


# ---------------------------------------------------------------- tokens

tokens_app = typer.Typer(
    help="Manage the account pool's tokens, in the store `serve` uses.",
    no_args_is_help=True,
)
app.add_typer(tokens_app, name="tokens")

EnvFileOption = Annotated[Path, typer.Option(help="Dotenv file read before the environment.")]
DataDirOption = Annotated[
    Path | None, typer.Option(help="Where the SQLite store lives (DATA_DIR).")
]

T = TypeVar("T")


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"chat2api: {message}", err=True)
    raise typer.Exit(code)


def _check_data_dir(settings: Settings) -> None:
    """One clear line and exit 1 when the SQLite store cannot live in DATA_DIR."""
    if settings.redis_url:
        return
    from chat2api.store import DB_FILE
    from chat2api.store.sqlite import SQLiteStore

    try:
        store = SQLiteStore(settings.data_dir / DB_FILE)
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        _fail(f"cannot keep the store in DATA_DIR {settings.data_dir}: {reason}")
    asyncio.run(store.close())


def _pool_settings(env_file: Path, data_dir: Path | None) -> Settings:
    settings = _settings(env_file, {"DATA_DIR": data_dir})
    # Progress bars and tables go to the terminal; only warnings interrupt them.
    _configure_logging("DEBUG" if settings.log_level == "DEBUG" else "WARNING")
    return settings


def _with_pool(settings: Settings, action: Callable[[AccountPool], Awaitable[T]]) -> T:
    """Run ``action`` on the configured pool; failures become a message and exit 1."""

    async def run() -> T:
        async with open_pool(settings) as pool:
            return await action(pool)

    try:
        return asyncio.run(run())
    except Chat2APIError as exc:
        _fail(exc.message)
    except store_errors() as exc:
        _fail(f"the store could not be used: {exc}")


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _ago(epoch: float, now: float) -> str:
    """``4m ago``, ``in 3h``."""
    return f"in {_span(epoch - now)}" if epoch > now else f"{_span(now - epoch)} ago"


def _when(epoch: float, now: float) -> str:
    """A local time and how far it is from now: ``14:03 (in 4m)``."""
    moment = datetime.fromtimestamp(epoch)
    shown = moment.strftime("%H:%M" if abs(epoch - now) < 43200 else "%m-%d %H:%M")
    return f"{shown} ({_ago(epoch, now)})"


@tokens_app.command("add")
def tokens_add(
    tokens: Annotated[
        list[str],
        typer.Argument(
            help="Tokens (`token` or `token,ChatGPT-Account-ID`), or `-` to read one per "
            "line from stdin (# comments ignored; keeps tokens out of shell history).",
            show_default=False,
        ),
    ],
    env_file: EnvFileOption = Path(".env"),
    data_dir: DataDirOption = None,
) -> None:
    """Add AccessTokens or RefreshTokens to the pool."""
    try:
        if tokens == ["-"]:
            given = parse_token_lines(sys.stdin.read())
        elif "-" in tokens:
            _fail("`-` (read stdin) cannot be mixed with tokens given as arguments", 2)
        else:
            given = parse_token_args(tokens)
        if not given:
            raise TokenListError("no token given (blank lines and # comments do not count)")
    except TokenListError as exc:
        _fail(str(exc), 2)
    settings = _pool_settings(env_file, data_dir)
    result = _with_pool(settings, lambda pool: add_tokens(pool, given))
    typer.echo(f"added {len(result.added)}, skipped {result.skipped} (already in the pool)")


@tokens_app.command("list")
def tokens_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    env_file: EnvFileOption = Path(".env"),
    data_dir: DataDirOption = None,
) -> None:
    """Show the accounts (by fingerprint, never the tokens) and their state."""
    settings = _pool_settings(env_file, data_dir)
    overview = _with_pool(settings, lambda pool: accounts_overview(pool.store, settings=settings))
    if as_json:
        typer.echo(json.dumps(overview, indent=2, ensure_ascii=False))
        return
    from rich.console import Console  # rich only for the terminal commands, not `serve`
    from rich.markup import escape
    from rich.table import Table

    counts = overview["counts"]
    table = Table(
        title=f"{counts['total']} accounts: {counts['active']} active, "
        f"{counts['cooling']} cooling, {counts['dead']} dead",
        title_justify="left",
        box=None,
        header_style="bold underline",
        pad_edge=False,
    )
    table.add_column("id", no_wrap=True, min_width=16)
    table.add_column("fingerprint", no_wrap=True, min_width=13)
    table.add_column("plan", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("until / reason", overflow="fold", min_width=10)
    table.add_column("last used", no_wrap=True)
    table.add_column("ok/fail", justify="right", no_wrap=True)
    if settings.proxy_url:
        table.add_column("proxy", overflow="fold")
    browsers = bool(settings.user_agents) or len(settings.impersonate_list) > 1
    if browsers:
        table.add_column("browser", overflow="fold")
    styles = {"active": "green", "cooling": "yellow", "dead": "red"}
    now = time.time()
    for account in overview["accounts"]:
        detail = account["dead_reason"] if account["state"] == "dead" else None
        if detail is None and account["cooldown_until"] is not None:
            detail = _when(account["cooldown_until"], now)
        table.add_row(
            account["id"],
            account["fingerprint"],
            account["plan"] or "—",
            f"[{styles[account['state']]}]{account['state']}[/]",
            escape(detail or "—"),
            "never" if account["last_used"] is None else _ago(account["last_used"], now),
            f"{account['successes']}/{account['failures']}",
            *([escape(account["proxy"])] if settings.proxy_url else []),
            *(
                [escape(" · ".join(filter(None, (account["impersonate"], account["user_agent"]))))]
                if browsers
                else []
            ),
        )
    # Piped output is not wrapped at 80 columns, so it stays one line per account.
    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    Console(width=160 if wide else None).print(table)


@tokens_app.command("remove")
def tokens_remove(
    account: Annotated[
        str | None,
        typer.Argument(help="The account's id, fingerprint, or the fingerprint's hash part."),
    ] = None,
    remove_all: Annotated[bool, typer.Option("--all", help="Remove every account.")] = False,
    env_file: EnvFileOption = Path(".env"),
    data_dir: DataDirOption = None,
) -> None:
    """Remove one account from the pool (or all with --all)."""
    if (account is None) == (not remove_all):
        _fail("name one account, or pass --all (not both)", 2)
    settings = _pool_settings(env_file, data_dir)
    if account is None:
        count = _with_pool(settings, lambda pool: pool.store.clear_accounts())
        typer.echo(f"removed {count} accounts")
        return
    removed = _with_pool(settings, lambda pool: remove_account(pool.store, account))
    typer.echo(f"removed {removed.id} ({removed.fingerprint})")


@tokens_app.command("refresh")
def tokens_refresh(
    account: Annotated[
        str | None, typer.Argument(help="Refresh only this account (id or fingerprint).")
    ] = None,
    refresh_all: Annotated[
        bool,
        typer.Option(
            "--all", help="Refresh every RefreshToken account, not only those due (< 5 days left)."
        ),
    ] = False,
    env_file: EnvFileOption = Path(".env"),
    data_dir: DataDirOption = None,
) -> None:
    """Exchange RefreshTokens for fresh AccessTokens now, with a progress bar."""
    if account is not None and refresh_all:
        _fail("name one account, or pass --all (not both)", 2)
    from rich.console import Console  # rich only for the terminal commands, not `serve`
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    settings = _pool_settings(env_file, data_dir)
    console = Console(stderr=True)

    async def run(pool: AccountPool) -> list[RefreshResult]:
        if account is not None:
            chosen = [await find_account(pool.store, account)]
        else:
            chosen = refresh_candidates(await pool.store.list_accounts(), due_only=not refresh_all)
        if not chosen:
            return []
        with Progress(
            TextColumn("refreshing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("refresh", total=len(chosen))
            return await refresh_accounts(pool, chosen, lambda _: progress.advance(task))

    results = _with_pool(settings, run)
    if not results:
        typer.echo(
            "nothing to refresh"
            + ("" if refresh_all else " (use --all to refresh every RefreshToken)")
        )
        return
    failed = [r for r in results if r.status != "refreshed"]
    for result in results:
        outcome = "refreshed" if result.error is None else f"failed: {result.error}"
        if result.merged_into is not None:
            outcome += f", the same account as {result.merged_into}: merged into it"
        typer.echo(f"{result.id} {result.fingerprint} {outcome}")
    typer.echo(f"refreshed {len(results) - len(failed)} of {len(results)}")
    if failed:
        raise typer.Exit(1)


@tokens_app.command("import-legacy")
def tokens_import_legacy(
    directory: Annotated[
        Path,
        typer.Argument(
            help="The original chat2api's data/ folder (token.txt, error_token.txt, "
            "refresh_map.json, seed_map.json).",
            show_default=False,
        ),
    ],
    env_file: EnvFileOption = Path(".env"),
    data_dir: DataDirOption = None,
) -> None:
    """Import the original chat2api's data/ folder into the pool and the gateway's seeds."""
    from rich.console import Console  # rich only for the terminal commands, not `serve`
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from chat2api.admin.legacy import LegacyImport, LegacyImportError, import_legacy
    from chat2api.admin.legacy import read_legacy_folder as read_folder

    try:
        folder = read_folder(directory)
    except LegacyImportError as exc:
        _fail(str(exc), 2)
    except OSError as exc:
        _fail(f"cannot read {directory}: {exc.strerror or exc}", 2)
    settings = _pool_settings(env_file, data_dir)
    console = Console(stderr=True)

    async def run(pool: AccountPool) -> LegacyImport:
        with Progress(
            TextColumn("importing"), BarColumn(), MofNCompleteColumn(), console=console
        ) as progress:
            task = progress.add_task("import", total=folder.work)
            return await import_legacy(pool, folder, lambda n: progress.advance(task, n))

    result = _with_pool(settings, run)
    typer.echo(f"read {', '.join(result.files)} from {directory}")
    typer.echo(
        f"accounts: {result.added} added, {result.updated} already in the pool (updated "
        f"where newer), {result.dead} marked dead (error_token.txt)"
    )
    typer.echo(f"AccessTokens carried over from refresh_map.json: {result.access_tokens}")
    typer.echo(f"gateway seeds bound: {result.seeds}")
    if result.unknown_lines:
        typer.echo(
            f"skipped {result.unknown_lines} entries that are not AccessTokens or RefreshTokens"
        )
    if result.bad_files:
        typer.echo(f"unreadable (not a JSON object), skipped: {', '.join(result.bad_files)}")


def main() -> None:
    """Console script entry point."""
    app()
