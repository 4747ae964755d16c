"""``bastion audit verify [--against FILE]`` and ``bastion audit checkpoint``.

``verify`` exits 0 when the chain is intact, 1 when it is broken (tampering, or a chain
that contradicts an exported checkpoint), 2 when the command or the ``--against`` file
is unusable, and 3 when the chain is intact but something needs a look: events that
waited too long for a checkpoint, or export lines that could not be read.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from bastion.audit import (
    DEFAULT_MAX_GAP,
    Anchors,
    ChainReport,
    Checkpoint,
    CheckpointGap,
    InvalidCheckpointExport,
    format_timestamp,
    read_anchors,
    verify_chain,
)
from bastion.cli.common import DataDir, audit_app, err, fail, opened, out, parse_duration, table

EXIT_BROKEN, EXIT_INPUT, EXIT_WARNINGS = 1, 2, 3

Against = Annotated[
    Path | None,
    typer.Option(
        "--against",
        help="Checkpoints exported by a sink (its JSON lines, or one checkpoint's JSON; "
        "'-' reads stdin). They are trusted, the data folder's own are not.",
        show_default=False,
    ),
]
MaxGap = Annotated[
    str,
    typer.Option(
        "--max-gap", help="Warn when events waited longer than this for a checkpoint (s/m/h/d)."
    ),
]
GapsSince = Annotated[
    str | None,
    typer.Option(
        "--gaps-since",
        help="Only warn about gaps that lasted into this recent window, e.g. 25h.",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]


def _read_export(path: Path) -> Anchors:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text("utf-8", "replace")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", code=EXIT_INPUT)
    try:
        return read_anchors(text, source=str(path))
    except InvalidCheckpointExport as exc:
        fail(exc.detail, "give the file a checkpoint sink writes (docs/audit.md)", EXIT_INPUT)


@audit_app.command("verify")
def audit_verify(
    against: Against = None,
    max_gap: MaxGap = f"{int(DEFAULT_MAX_GAP.total_seconds()) // 60}m",
    gaps_since: GapsSince = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """Check the hash chain and its checkpoints; exit 1 at the first broken link."""
    gap = timedelta(seconds=parse_duration(max_gap))
    if gap <= timedelta(0):
        fail("--max-gap must be positive", code=EXIT_INPUT)
    window = None if gaps_since is None else timedelta(seconds=parse_duration(gaps_since))
    anchors = None if against is None else _read_export(against)
    with opened(data_dir) as rt, rt.db.read() as conn:
        now = rt.clock.now()
        report = verify_chain(
            conn,
            verifier=lambda kid, data, sig: rt.keyring.verify_signature(
                kid=kid, data=data, signature=sig
            ),
            anchors=anchors,
            max_gap=gap,
            now=now,
            gaps_since=None if window is None else now - window,
        )
    warned = report.warnings or (anchors is not None and anchors.unreadable > 0)
    if as_json:
        _print_json(_as_json(report, anchors, against, gap))
    else:
        _render(report, anchors, against)
    if not report.ok:
        raise typer.Exit(EXIT_BROKEN)
    if warned:
        raise typer.Exit(EXIT_WARNINGS)


def _render(report: ChainReport, anchors: Anchors | None, against: Path | None) -> None:
    grid = table("Audit chain", "", "")
    grid.show_header = False
    grid.add_row("events verified", str(report.events))
    if report.head_seq is not None and report.head_at is not None:
        digest = (report.head_hash or "")[:16]
        grid.add_row("head", f"seq {report.head_seq} at {_time(report.head_at)} (hash {digest}…)")
    grid.add_row("checkpoints in the data folder", f"{report.checkpoints_checked} verified")
    if anchors is not None:
        grid.add_row(
            f"exported checkpoints ({against})",
            f"{report.exported_checked} of {len(anchors.checkpoints)} matched",
        )
    if report.last_checkpoint is not None:
        label = "last exported checkpoint" if anchors is not None else "last checkpoint"
        grid.add_row(label, _checkpoint(report.last_checkpoint))
    out.print(grid)
    if report.gaps:
        gaps = table(
            f"Checkpoint gaps ({report.gap_count})",
            "events", "first event", "checkpointed", "waited",
        )  # fmt: skip
        for gap in report.gaps:
            gaps.add_row(
                f"{gap.first_seq}-{gap.last_seq}",
                _time(gap.first_event_at),
                "not yet" if gap.checkpointed_at is None else _time(gap.checkpointed_at),
                str(gap.waited).split(".")[0],
            )
        out.print(gaps)
        for gap in report.gaps[:3]:
            out.print(f"[yellow]warning:[/] {gap.describe()}")
    for note in () if anchors is None else anchors.notes:
        out.print(f"[yellow]warning:[/] {against}: {note}")
    if not report.ok:
        err.print(
            f"[bold red]audit log broken[/] at event seq {report.first_broken_seq}: "
            f"{report.problem}"
        )
    else:
        status = " [yellow]with warnings[/]" if report.gaps else ""
        out.print(
            f"[green]audit log intact[/]{status}: {report.events} events, "
            f"{report.checkpoints_checked} signed checkpoints verified"
            + (f", {report.exported_checked} exported checkpoints matched" if anchors else "")
        )
    if anchors is None:
        out.print(
            "[dim]→ the data folder's own checkpoints were trusted; pass a sink's export "
            "(--against FILE) to catch a chain rewritten or cut short with the key beside it[/]"
        )


def _print_json(data: dict[str, Any]) -> None:
    """Plain JSON on stdout (no console wrapping or colours), for scripts and monitoring."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _time(moment: Any) -> str:
    return format_timestamp(moment)[:19].replace("T", " ") + " UTC"


def _checkpoint(checkpoint: Checkpoint) -> str:
    return f"seq {checkpoint.seq} signed {_time(checkpoint.at)} (key {checkpoint.kid})"


def _gap_json(gap: CheckpointGap) -> dict[str, Any]:
    return {
        "first_seq": gap.first_seq,
        "last_seq": gap.last_seq,
        "first_event_at": format_timestamp(gap.first_event_at),
        "last_event_at": format_timestamp(gap.last_event_at),
        "checkpointed_at": (
            None if gap.checkpointed_at is None else format_timestamp(gap.checkpointed_at)
        ),
        "waited_seconds": int(gap.waited.total_seconds()),
        "message": gap.describe(),
    }


def _as_json(
    report: ChainReport, anchors: Anchors | None, against: Path | None, max_gap: timedelta
) -> dict[str, Any]:
    warned = report.warnings or (anchors is not None and anchors.unreadable > 0)
    last = report.last_checkpoint
    return {
        "status": "broken" if not report.ok else "warnings" if warned else "intact",
        "ok": report.ok,
        "events": report.events,
        "head": None
        if report.head_seq is None or report.head_at is None
        else {
            "seq": report.head_seq,
            "hash": report.head_hash,
            "at": format_timestamp(report.head_at),
        },
        "problem": None
        if report.ok
        else {"seq": report.first_broken_seq, "message": report.problem},
        "checkpoints_checked": report.checkpoints_checked,
        "signatures_verified": report.signatures_verified,
        "export": None
        if anchors is None
        else {
            "file": str(against),
            "chain": anchors.chain,
            "checkpoints": len(anchors.checkpoints),
            "matched": report.exported_checked,
            "unreadable_lines": anchors.unreadable,
            "notes": list(anchors.notes),
        },
        "last_trusted_checkpoint": None
        if last is None
        else {"seq": last.seq, "at": format_timestamp(last.at), "kid": last.kid},
        "max_gap_seconds": int(max_gap.total_seconds()),
        "gap_count": report.gap_count,
        "gaps": [_gap_json(gap) for gap in report.gaps],
    }


@audit_app.command("checkpoint")
def audit_checkpoint(as_json: AsJson = False, data_dir: DataDir = None) -> None:
    """Sign the current head of the chain with the server's key and send it to the sinks."""
    with opened(data_dir) as rt:
        checkpoint = rt.checkpointer.run(signer=rt.keyring.sign)
        statuses = rt.checkpointer.exporter.status()
    failed = [status for status in statuses if status.failing_since]
    if as_json:
        _print_json(
            {
                "checkpoint": None
                if checkpoint is None
                else {
                    "seq": checkpoint.seq,
                    "hash": checkpoint.hash,
                    "at": format_timestamp(checkpoint.at),
                    "kid": checkpoint.kid,
                },
                "sinks": [
                    {"sink": s.sink, "delivered": s.delivered, "error": s.last_error}
                    for s in statuses
                ],
            }
        )
    elif checkpoint is None:
        out.print("Nothing to sign: the audit log is empty or its head is already signed.")
    else:
        out.print(f"Signed checkpoint at seq {checkpoint.seq} (key {checkpoint.kid}).")
        for status in statuses:
            if status.failing_since:
                err.print(f"[bold red]not sent[/] to {status.sink}: {status.last_error}")
            else:
                out.print(f"Sent to {status.sink}.")
        if not statuses:
            out.print(
                "[dim]→ no BASTION_AUDIT_CHECKPOINT_SINK: the checkpoint stays in the data "
                "folder, where whoever can rewrite the chain can sign it again "
                "(docs/audit.md)[/]"
            )
    if failed:
        raise typer.Exit(EXIT_BROKEN)
