"""The ``bastion`` command tree, its consoles and the helpers every command uses.

Every command takes ``--data-dir`` (env ``BASTION_DATA_DIR``) and works on a running or
a stopped server: it opens the same database and key files. Only ``serve`` and ``init``
create an installation; every other command refuses a folder without one
(``bastion.datadir``).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Connection

from bastion import __version__
from bastion.config import Settings, load_settings
from bastion.datadir import lock_for_command, prepare, require_installation
from bastion.domain import AAL3, Grant, Principal
from bastion.errors import BastionError
from bastion.identity.tenants import DEFAULT_TENANT, require_tenant
from bastion.runtime import Runtime
from bastion.text import printable

app = typer.Typer(
    help="Bastion: a vector database behind a zero-trust front door.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # a local may hold a password, a key, a token
)
tenant_app = typer.Typer(help="Tenants: isolated groups of users, keys and collections.",
                         no_args_is_help=True)  # fmt: skip
user_app = typer.Typer(help="Manage human users.", no_args_is_help=True)
key_app = typer.Typer(help="Service-account API keys.", no_args_is_help=True)
keys_app = typer.Typer(help="Token signing keys.", no_args_is_help=True)
collection_app = typer.Typer(help="Vector collections.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
_GROUPS = frozenset({"tenant", "user", "key", "keys", "collection", "audit"})
app.add_typer(tenant_app, name="tenant")
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="key")
app.add_typer(keys_app, name="keys")
app.add_typer(collection_app, name="collection")
app.add_typer(audit_app, name="audit")

out = Console()
err = Console(stderr=True, soft_wrap=True)  # an error is one line, however long

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Data folder (default ./data, env BASTION_DATA_DIR).", show_default=False
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
CLI_ACTOR = "cli:operator"  # the actor of every change a command makes, in the audit log

# What to do next, by the code of the error a service raised.
HINTS = {
    "tenant_not_found": "see `bastion tenant list`, or create it: bastion tenant create NAME",
    "tenant_exists": "see `bastion tenant list`",
    "user_not_found": "see `bastion user list`",
    "username_unavailable": "choose another username (`bastion user list` shows the taken ones)",
    "service_account_not_found": "see `bastion key list`",
    "api_key_not_found": "see `bastion key list` for the key ids",
    "last_admin": "make another user admin first",
}


def fail(message: str, hint: str | None = None, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {shown(message)}")  # a path may hold "[…]"
    if hint:
        err.print(f"[dim]→ {shown(hint)}[/]")
    raise typer.Exit(code)


def failed(exc: BastionError) -> NoReturn:
    """Stop on a service's refusal: its message, and what to do next."""
    fail(exc.detail, hint_for(exc))


def hint_for(exc: BastionError) -> str | None:
    if exc.code == "validation_error":
        return f"`{_command_path()} --help` says what each argument takes"
    return HINTS.get(exc.code)


def _command_path() -> str:
    """``bastion user create`` from the command line being run."""
    words = ["bastion"]
    for word in sys.argv[1:3]:
        if word.startswith("-") or not word.replace("-", "").isalpha():
            break
        words.append(word)
        if len(words) == 2 and word not in _GROUPS:
            break
    return " ".join(words)


def print_json(data: Any, *, indent: int | None = 2) -> None:
    """Plain JSON on stdout (no console wrapping or colours), for scripts. Every character
    beyond ASCII is a ``\\u`` escape: a stored name can rewrite neither the terminal nor
    the line structure of ``--json`` lines."""
    typer.echo(json.dumps(data, indent=indent, ensure_ascii=True, default=str))


def operator(conn: Connection, *, now: datetime) -> Principal:
    """Who a command acts as: the operator at the data folder. Whoever can read the folder
    holds its keys, so the operator has the powers of an installation admin (``admin`` of
    the ``default`` tenant) at ``aal3``. Commands that change something call the same
    services as the admin API with this principal, so ``authz.decide`` still applies its
    rules (no tenant left without an admin) and the audit log names ``cli:operator``."""
    default = require_tenant(conn, DEFAULT_TENANT)
    return Principal(
        kind="user",
        id=CLI_ACTOR,
        name=CLI_ACTOR,
        tenant_id=default.id,
        tenant_name=default.name,
        grants=(Grant("admin", default.id),),
        acr=AAL3,
        amr=("cli",),
        auth_time=now,
    )


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


def _require_installation(settings: Settings) -> None:
    """SQLite: the folder must hold an installation. PostgreSQL: the installation is the
    database (the keys too), and any folder does (a replica's may be empty)."""
    if settings.resolved_database_url.startswith("sqlite"):
        require_installation(settings.data_dir)
    else:
        prepare(settings.data_dir)


def open_runtime(data_dir: Path | None, **overrides: object) -> Runtime:
    """The runtime of an installation, opened under the folder's lock and then let go:
    for a command that runs for long and only reads (``bastion audit tail``), which must
    not keep a server from starting. The caller closes it."""
    settings = settings_for(data_dir, **overrides)
    try:
        _require_installation(settings)
        with lock_for_command(settings.data_dir):
            return Runtime.open(settings)
    except BastionError as exc:
        fail(exc.detail)


@contextmanager
def opened(data_dir: Path | None, **overrides: object) -> Iterator[Runtime]:
    """The runtime of an installation's data folder (its server running or stopped);
    a folder without an installation is an error."""
    settings = settings_for(data_dir, **overrides)
    try:
        _require_installation(settings)
    except BastionError as exc:
        fail(exc.detail)
    with lock_for_command(settings.data_dir):
        rt = Runtime.open(settings)
        try:
            yield rt
        except BastionError as exc:
            failed(exc)
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
