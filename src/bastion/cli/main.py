"""Entry point: registers every command group, then runs the tree."""

from __future__ import annotations

import os
import sys

from bastion.cli import (  # noqa: F401  (each registers its commands)
    audit,
    audit_tail,
    backup,
    collections,
    init,
    keys,
    migrate_data,
    serve,
    tenants,
    users,
)
from bastion.cli.common import app, err, hint_for, shown
from bastion.datadir import PRIVATE_UMASK
from bastion.errors import BastionError
from bastion.storage.redact import redact_database_errors


def main() -> None:
    os.umask(PRIVATE_UMASK)  # what Bastion creates (database, indexes, keys) is its own
    try:
        app()
    except BastionError as exc:
        err.print(f"[bold red]error:[/] {shown(exc.detail)}")
        hint = hint_for(exc)
        if hint is not None:
            err.print(f"[dim]→ {shown(hint)}[/]")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # printed as a traceback: without the values a query carried
        redact_database_errors(exc)
        raise
