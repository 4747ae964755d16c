"""``bastion init``: create an installation without starting the server."""

from __future__ import annotations

from rich.markup import escape

from bastion.cli.common import DataDir, app, fail, out, settings_for
from bastion.datadir import has_installation, lock_for_command, prepare
from bastion.errors import BastionError
from bastion.runtime import Runtime


@app.command()
def init(data_dir: DataDir = None) -> None:
    """Create an installation: the database, the token signing keys and the sealing key.

    `bastion serve` does it too on a new folder; every other command needs one.
    """
    settings = settings_for(data_dir)
    path = settings.data_dir
    if has_installation(path):
        out.print(
            f"There is already a Bastion installation in {escape(str(path))}; nothing changed."
        )
        return
    try:
        prepare(path)
        with lock_for_command(path):
            Runtime.open(settings).close()
    except BastionError as exc:
        fail(exc.detail)
    out.print(
        f"Created a Bastion installation in {escape(str(path.resolve()))}.\n"
        "Next: `bastion serve` prints a one-time setup link for the first admin "
        "(or: bastion user create admin --role admin --password-stdin).",
        highlight=False,
        soft_wrap=True,
    )
