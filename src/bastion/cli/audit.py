"""``bastion audit verify`` and ``bastion audit checkpoint``."""

from __future__ import annotations

import typer

from bastion.audit import verify_chain, write_checkpoint
from bastion.cli.common import DataDir, audit_app, err, opened, out


@audit_app.command("verify")
def audit_verify(data_dir: DataDir = None) -> None:
    """Check the hash chain and signed checkpoints; exit 1 at the first broken link."""
    with opened(data_dir) as rt, rt.db.read() as conn:
        report = verify_chain(
            conn,
            verifier=lambda kid, data, sig: rt.keyring.verify_signature(
                kid=kid, data=data, signature=sig
            ),
        )
    if report.ok:
        out.print(
            f"[green]audit log intact[/]: {report.events} events, "
            f"{report.checkpoints_checked} signed checkpoints verified"
        )
        return
    err.print(
        f"[bold red]audit log broken[/] at event seq {report.first_broken_seq}: {report.problem}"
    )
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(data_dir: DataDir = None) -> None:
    """Sign the current head of the chain with the server's key."""
    with opened(data_dir) as rt, rt.db.begin() as conn:
        checkpoint = write_checkpoint(conn, signer=rt.keyring.sign, now=rt.clock.now())
    if checkpoint is None:
        out.print("The audit log is empty; nothing to sign.")
        return
    out.print(f"Signed checkpoint at seq {checkpoint.seq} (key {checkpoint.kid}).")
