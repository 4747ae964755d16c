"""Entry point: registers every command group, then runs the tree."""

from __future__ import annotations

import sys

from bastion.cli import audit, serve, users  # noqa: F401  (each registers its commands)
from bastion.cli.common import app, err
from bastion.errors import BastionError


def main() -> None:
    try:
        app()
    except BastionError as exc:
        err.print(f"[bold red]error:[/] {exc.detail}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
