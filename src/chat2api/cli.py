"""The ``chat2api`` command: parses flags, wires parts, sets up logging."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn

from chat2api.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    help="An OpenAI-compatible API served through ChatGPT web accounts.",
    no_args_is_help=True,
    add_completion=False,
)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _settings(env_file: Path, overrides: dict[str, Any]) -> Settings:
    try:
        return load_settings(os.environ, env_file=env_file, overrides=overrides)
    except SettingsError as exc:
        typer.echo(f"chat2api: invalid configuration: {exc}", err=True)
        raise typer.Exit(2) from exc


def _start_simulator() -> str:
    """Run the built-in simulator on a free loopback port in a thread; its base URL."""
    from chat2api.sim import SimServer

    return SimServer().start().base_url


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
) -> None:
    """Start the OpenAI-compatible API server."""
    overrides: dict[str, Any] = {"DATA_DIR": data_dir, "LOG_LEVEL": workers_log_level}
    if simulate:
        overrides["CHATGPT_BASE_URL"] = _start_simulator()
    settings = _settings(env_file, overrides)
    _configure_logging(settings.log_level)
    from chat2api.app import create_app

    if simulate:
        logging.getLogger("chat2api").info(
            "simulator at %s; try: OPENAI_BASE_URL=http://127.0.0.1:%d%s/v1",
            settings.chatgpt_base_url[0],
            port,
            settings.prefix_path,
        )
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        loop="uvloop",
        http="httptools",
        log_config=None,
    )


@app.command()
def sim(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5006,
) -> None:
    """Start the offline simulator of the ChatGPT web backend."""
    from chat2api.sim import serve as serve_sim

    _configure_logging("INFO")
    typer.echo(f"ChatGPT backend simulator at http://{host}:{port} (Ctrl+C to stop)")
    serve_sim(host=host, port=port)


def main() -> None:
    """Console script entry point."""
    app()
