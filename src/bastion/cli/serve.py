"""``bastion serve``: start the HTTP server on embedded storage."""

from __future__ import annotations

import logging
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
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        application = create_app(settings)
    except BastionError as exc:
        fail(exc.detail, "fix the setting named above and start again")
    base = settings.resolved_public_url
    started = application.state.bootstrap
    out.print(f"[bold green]Bastion[/] listening on [bold]{base}[/]  (data: {settings.data_dir})")
    out.print(f'  API docs:   {base}/docs      Qdrant clients: QdrantClient(url="{base}", …)')
    if started.kind == "link":
        out.print(
            "[bold yellow]No users yet.[/] Create the first admin with this one-time link "
            "(valid 24 h):"
        )
        out.print(f"  {started.setup_url}")
        out.print("  or: bastion user create admin --role admin --password-stdin")
    elif started.kind == "password":
        out.print(
            "First admin created: user [bold]admin[/] with the password from "
            "BASTION_BOOTSTRAP_ADMIN_PASSWORD."
        )
    if started.kind != "existing":
        out.print(
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
