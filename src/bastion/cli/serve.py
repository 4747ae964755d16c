"""``bastion serve``: start the HTTP server (embedded storage, or a PostgreSQL replica).

In this order, so that a mistake costs nothing: settings, the TLS files, the port (bound,
not yet listening), the data folder and its lock (one server per folder), the app (which
creates the installation on a new folder); "listening on …" is printed once the server
accepts connections.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from fastapi import FastAPI
from rich.markup import escape

from bastion.app import create_app
from bastion.cli.common import DataDir, app, fail, out, settings_for
from bastion.cli.listen import ReadyServer, bind, check_tls
from bastion.cli.workers import run_workers
from bastion.config import Settings, load_settings
from bastion.datadir import lock_for_server, prepare
from bastion.errors import BastionError
from bastion.identity.bootstrap import Bootstrap
from bastion.logs import configure_logging, uvicorn_log_config
from bastion.metrics import prepare as prepare_metrics
from bastion.vectors import EmbeddedEngine


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [6333].")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes, 0: one per CPU core [1].")
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(help="PEM certificate (chain): serve HTTPS [env BASTION_TLS_CERT]."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="PEM private key of --tls-cert [env BASTION_TLS_KEY].")
    ] = None,
) -> None:
    """Start Bastion. On an empty data folder, create keys and the first admin."""
    settings = settings_for(
        data_dir, host=host, port=port, workers=workers, tls_cert=tls_cert, tls_key=tls_key
    )
    _configure_logging(settings)
    count = settings.resolved_workers
    options = uvicorn_options(settings)
    try:
        if settings.tls_cert is not None and settings.tls_key is not None:
            check_tls(settings.tls_cert, settings.tls_key)
        listener = bind(settings.host, settings.port)
        if count > 1:
            listener.close()  # only a check: each worker binds its own socket
        prepare(settings.data_dir)
        lock = lock_for_server(settings.data_dir)
        application = create_app(settings)
    except BastionError as exc:
        fail(exc.detail)
    announce = partial(_announce, settings, application.state.bootstrap, count)
    if count == 1:
        config = uvicorn.Config(application, host=settings.host, port=settings.port, **options)
        ReadyServer(config, on_ready=announce).run(sockets=[listener])
        return
    if application.state.runtime.db.is_sqlite:  # PostgreSQL: each worker is a replica
        EmbeddedEngine.prepare_for_workers(application.state.runtime.db, settings.data_dir)
    prepare_metrics(settings.data_dir)  # the workers add up their counters there
    application.state.runtime.close()
    # The workers read their settings as this process did, plus the options given here.
    os.environ.update(
        BASTION_DATA_DIR=str(settings.data_dir.resolve()),
        BASTION_HOST=settings.host,
        BASTION_PORT=str(settings.port),
        BASTION_WORKERS=str(count),
    )
    if settings.tls_cert is not None and settings.tls_key is not None:
        os.environ.update(
            BASTION_TLS_CERT=str(settings.tls_cert.resolve()),
            BASTION_TLS_KEY=str(settings.tls_key.resolve()),
        )
    code = run_workers(
        count,
        settings.host,
        settings.port,
        worker_app,
        inherit=lock,
        on_ready=announce,
        **options,
    )
    if code:
        raise typer.Exit(code)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for these settings, the same for one process and for workers.

    Forwarded headers (``X-Forwarded-For``, ``-Proto``) are believed only from the
    configured proxies: uvicorn's own default trusts them from 127.0.0.1, so any local
    client could choose the address that throttles count and the audit log records.
    """
    options: dict[str, Any] = {
        "log_level": settings.log_level,
        "access_log": False,
        "server_header": False,
        "proxy_headers": bool(settings.trusted_proxies),
        **uvicorn_log_config(settings.log_format),
    }
    if settings.trusted_proxies:
        options["forwarded_allow_ips"] = ",".join(settings.trusted_proxies)
    if settings.tls_cert is not None and settings.tls_key is not None:
        options["ssl_certfile"] = str(settings.tls_cert)
        options["ssl_keyfile"] = str(settings.tls_key)
    return options


def worker_app() -> FastAPI:
    """The app of one worker process of ``bastion serve --workers N``."""
    settings = load_settings()
    _configure_logging(settings)
    return create_app(settings, worker=True)


def _announce(settings: Settings, started: Bootstrap, count: int) -> None:
    base = settings.resolved_public_url
    say = partial(out.print, soft_wrap=True, highlight=False)  # links must never be wrapped
    say(
        f"[bold green]Bastion[/] listening on [bold]{base}[/]  "
        f"(data: {escape(str(settings.data_dir.resolve()))})"
    )
    say(f"  Console: {base}/console    API description: {base}/openapi.json")
    say(f'  Qdrant clients: QdrantClient(url="{base}", api_key=…)')
    if count > 1 and settings.resolved_database_url.startswith("sqlite"):
        say(f"  {count} worker processes, each with its own copy of the collections in memory")
    elif count > 1:
        say(f"  {count} worker processes, each a replica on the shared PostgreSQL database")
    if started.kind == "link":
        say(
            "[bold yellow]No users yet.[/] Create the first admin with this one-time link "
            "(valid 24 h):"
        )
        say(f"  {started.setup_url}")
        say(
            "  It replaces any setup link printed before (at an earlier start, or by another "
            "replica of this database)."
        )
        say("  or: bastion user create admin --role admin --password-stdin")
    elif started.kind == "password":
        say(
            "First admin created: user [bold]admin[/] with the password from "
            "BASTION_BOOTSTRAP_ADMIN_PASSWORD."
        )
    if started.kind != "existing":
        say(
            f"  Sign in at {base}/console (or POST /auth/login); the first sign-in enrols "
            "an authenticator app."
        )


def _configure_logging(settings: Settings) -> None:
    configure_logging(level=settings.log_level, log_format=settings.log_format)
