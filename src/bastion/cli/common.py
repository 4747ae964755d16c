"""The ``bastion`` command tree, its consoles and the helpers every command uses.

Every command takes ``--data-dir`` (env ``BASTION_DATA_DIR``) and works on a running or
a stopped server: it opens the same database and key files. Only ``serve`` and ``init``
create an installation; every other command refuses a folder without one
(``bastion.datadir``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bastion import __version__
from bastion.config import Settings, load_settings
from bastion.datadir import lock_for_command, require_installation
from bastion.errors import BastionError
from bastion.runtime import Runtime
from bastion.text import printable

app = typer.Typer(
    help="Bastion: a vector database behind a zero-trust front door.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # a local may hold a password, a key, a token
)
user_app = typer.Typer(help="Manage human users.", no_args_is_help=True)
key_app = typer.Typer(help="Service-account API keys.", no_args_is_help=True)
keys_app = typer.Typer(help="Token signing keys.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="key")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")

out = Console()
err = Console(stderr=True, soft_wrap=True)  # an error is one line, however long

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Data folder (default ./data, env BASTION_DATA_DIR).", show_default=False
    ),
]
ROLES = ("viewer", "developer", "admin")


def fail(message: str, hint: str | None = None, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {shown(message)}")  # a path may hold "[…]"
    if hint:
        err.print(f"[dim]→ {shown(hint)}[/]")
    raise typer.Exit(code)


def settings_for(data_dir: Path | None, **overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    try:
        return load_settings(**values)
    except BastionError as exc:
        fail(exc.detail, "check the BASTION_* environment variables and BASTION_CONFIG file")


def _version(value: bool) -> None:
    if value:
        out.print(f"bastion {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Bastion command line."""


def parse_duration(text: str) -> int:
    """``30d``, ``12h``, ``15m``, ``90s`` or plain seconds → seconds."""
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if not match:
        raise typer.BadParameter("use a number with s, m, h or d, e.g. 30d")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


@contextmanager
def opened(data_dir: Path | None, **overrides: object) -> Iterator[Runtime]:
    """The runtime of an installation's data folder (its server running or stopped);
    a folder without an installation is an error."""
    settings = settings_for(data_dir, **overrides)
    try:
        require_installation(settings.data_dir)
    except BastionError as exc:
        fail(exc.detail)
    with lock_for_command(settings.data_dir):
        rt = Runtime.open(settings)
        try:
            yield rt
        finally:
            rt.close()


def shown(value: str) -> str:
    """Stored text fit for the terminal: control characters escaped (``bastion.text``:
    no ANSI escape, newline or bidi override reaches the screen) and rich markup too."""
    return escape(printable(value))


class SafeTable(Table):
    """A table whose text cells are ``shown``: a name never rewrites the terminal."""

    def add_row(self, *cells: Any, **options: Any) -> None:
        super().add_row(*(shown(c) if isinstance(c, str) else c for c in cells), **options)


def table(title: str, *columns: str) -> Table:
    grid = SafeTable(title=title, title_justify="left", header_style="bold")
    for column in columns:
        grid.add_column(column)
    return grid
