"""``bastion audit tail``: the newest audit events, then each new one as it is written.

It reads the database the server writes (from another process, on the same machine or,
on PostgreSQL, anywhere), polling for events after the last one shown. It holds the data
folder's lock only while it opens the installation, so a server can start or restart
while it follows. ``--json`` prints one event per line in the shape of
``GET /admin/audit`` (hash and previous hash included), for a pipe into ``jq`` or a
collector.
"""

from __future__ import annotations

import sys
import time
from functools import partial
from typing import Annotated

import typer
from sqlalchemy import Connection

from bastion.audit import MAX_LIMIT, StoredEvent, format_timestamp, head, query
from bastion.cli.common import (
    AsJson,
    DataDir,
    audit_app,
    fail,
    open_runtime,
    out,
    print_json,
    shown,
)
from bastion.identity.tenants import list_tenants, tenant_by_name


class _Names:
    """Tenant names by id, read again when an event names a tenant created since."""

    def __init__(self) -> None:
        self.known: dict[str, str] = {}

    def of(self, conn: Connection, tenant_id: str | None) -> str:
        if tenant_id is None:
            return "-"
        if tenant_id not in self.known:
            self.known = {found.id: found.name for found in list_tenants(conn)}
        return self.known.get(tenant_id, tenant_id)


def _line(event: StoredEvent, tenant: str) -> str:
    at = format_timestamp(event.at)[:19].replace("T", " ")
    colour = "green" if event.outcome == "success" else "red"
    parts = [
        f"[dim]{at}[/]",
        f"#{event.seq}",
        f"[bold]{shown(event.action)}[/]",
        f"[{colour}]{shown(event.outcome)}[/]",
        f"actor={shown(event.actor or '-')}",
        f"tenant={shown(tenant)}",
    ]
    if event.resource:
        parts.append(f"resource={shown(event.resource)}")
    if event.reason:
        parts.append(f"reason={shown(event.reason)}")
    return "  ".join(parts)


@audit_app.command("tail")
def audit_tail(
    lines: Annotated[
        int, typer.Option("--lines", "-n", min=0, max=MAX_LIMIT, help="Events shown first.")
    ] = 10,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="Keep printing new events.")
    ] = True,
    action: Annotated[
        str | None, typer.Option(help="Only this action, e.g. user.created.", show_default=False)
    ] = None,
    actor: Annotated[
        str | None, typer.Option(help="Only this actor's events (an id).", show_default=False)
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(help="Only this tenant's events.", show_default=False)
    ] = None,
    interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between looks for new events.")
    ] = 1.0,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """Show the newest audit events, then follow new ones (Ctrl-C stops)."""
    rt = open_runtime(data_dir)
    names = _Names()
    try:
        with rt.db.read() as conn:
            tenant_id = None
            if tenant is not None:
                found = tenant_by_name(conn, tenant)
                if found is None:
                    fail(f"no tenant named '{tenant}'", "see `bastion tenant list`")
                tenant_id = found.id
            find = partial(query, tenant_id=tenant_id, action=action, actor=actor)
            latest = head(conn)
            last = 0 if latest is None else latest[0]
            recent = find(conn, limit=lines, newest_first=True).events if lines else ()
            _show(conn, list(reversed(recent)), names, as_json)
        while follow:
            time.sleep(interval)
            with rt.db.read() as conn:
                page = find(conn, limit=MAX_LIMIT, after_seq=last)
                _show(conn, list(page.events), names, as_json)
                if page.events:
                    last = page.events[-1].seq
    except KeyboardInterrupt:
        pass
    finally:
        rt.close()


def _show(conn: Connection, events: list[StoredEvent], names: _Names, as_json: bool) -> None:
    for event in events:
        if as_json:
            print_json(event.to_json(), indent=None)
        else:
            out.print(
                _line(event, names.of(conn, event.tenant_id)), highlight=False, soft_wrap=True
            )
    sys.stdout.flush()
