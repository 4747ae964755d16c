"""``bastion serve``: start the HTTP server on embedded storage."""

from __future__ import annotations

import logging
from functools import partial
from typing import Annotated

import typer
import uvicorn

from bastion.app import create_app
from bastion.cli.common import DataDir, app, fail, out, settings_for
from bastion.errors import BastionError


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [6333].")] = None,
) -> None:
    """Start Bastion. On an empty data folder, create keys and the first admin."""
    settings = settings_for(data_dir, host=host, port=port)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
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
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        server_header=False,
    )
