"""``bastion serve``: start the HTTP server on embedded storage."""

from __future__ import annotations

import logging
import os
from functools import partial
from typing import Annotated, Any

import typer
import uvicorn
from fastapi import FastAPI

from bastion.app import create_app
from bastion.cli.common import DataDir, app, fail, out, settings_for
from bastion.cli.workers import run_workers
from bastion.config import Settings, load_settings
from bastion.errors import BastionError
from bastion.vectors import EmbeddedEngine


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [6333].")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes, 0: one per CPU core [1].")
    ] = None,
) -> None:
    """Start Bastion. On an empty data folder, create keys and the first admin."""
    settings = settings_for(data_dir, host=host, port=port, workers=workers)
    _configure_logging(settings)
    try:
        application = create_app(settings)
    except BastionError as exc:
        fail(exc.detail, "fix the setting named above and start again")
    base = settings.resolved_public_url
    started = application.state.bootstrap
    say = partial(out.print, soft_wrap=True, highlight=False)  # links must never be wrapped
    say(
        f"[bold green]Bastion[/] listening on [bold]{base}[/]  "
        f"(data: {settings.data_dir.resolve()})"
    )
    say(f'  API docs: {base}/docs    Qdrant clients: QdrantClient(url="{base}", api_key=…)')
    if started.kind == "link":
        say(
            "[bold yellow]No users yet.[/] Create the first admin with this one-time link "
            "(valid 24 h):"
        )
        say(f"  {started.setup_url}")
        say("  or: bastion user create admin --role admin --password-stdin")
    elif started.kind == "password":
        say(
            "First admin created: user [bold]admin[/] with the password from "
            "BASTION_BOOTSTRAP_ADMIN_PASSWORD."
        )
    if started.kind != "existing":
        say(
            "  Sign in with POST /auth/login; the first sign-in enrols an authenticator app "
            "(POST /me/factors/totp)."
        )
    count = settings.resolved_workers
    options: dict[str, Any] = {
        "log_level": settings.log_level,
        "access_log": False,
        "server_header": False,
    }
    if count == 1:
        uvicorn.run(application, host=settings.host, port=settings.port, **options)
        return
    say(f"  {count} worker processes, each with its own copy of the collections in memory")
    EmbeddedEngine.prepare_for_workers(application.state.runtime.db, settings.data_dir)
    application.state.runtime.close()
    # The workers read their settings as this process did, plus the options given here.
    os.environ.update(
        BASTION_DATA_DIR=str(settings.data_dir.resolve()),
        BASTION_HOST=settings.host,
        BASTION_PORT=str(settings.port),
        BASTION_WORKERS=str(count),
    )
    code = run_workers(count, settings.host, settings.port, worker_app, **options)
    if code:
        raise typer.Exit(code)


def worker_app() -> FastAPI:
    """The app of one worker process of ``bastion serve --workers N``."""
    settings = load_settings()
    _configure_logging(settings)
    return create_app(settings, worker=True)


def _configure_logging(settings: Settings) -> None:
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
