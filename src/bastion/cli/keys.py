"""``bastion key create | list | revoke``: service-account API keys, through the services
the admin API calls (``bastion.identity.service_account_admin``), audited with
``cli:operator`` as actor."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from bastion.cli.common import (
    AsJson,
    DataDir,
    err,
    fail,
    key_app,
    opened,
    operator,
    out,
    parse_duration,
    print_json,
    shown,
    table,
)
from bastion.identity.grants import grants_of
from bastion.identity.service_account_admin import create_account, end_key, new_key
from bastion.identity.service_accounts import (
    ApiKeyRecord,
    ServiceAccount,
    find_api_key,
    find_service_account,
    list_api_keys,
    list_service_accounts,
    service_account_by_id,
)
from bastion.identity.tenants import DEFAULT_TENANT, require_tenant, tenant_by_id


@key_app.command("create")
def key_create(
    service_account: Annotated[
        str, typer.Option("--service-account", help="Created if it does not exist.")
    ],
    role: Annotated[
        list[str] | None,
        typer.Option(
            help="Role of a new service account (repeatable) [viewer].", show_default=False
        ),
    ] = None,
    tenant: Annotated[str, typer.Option(help="Tenant name.")] = DEFAULT_TENANT,
    expires_in: Annotated[str | None, typer.Option(help="Lifetime such as 30d or 12h.")] = None,
    collection: Annotated[
        list[str] | None,
        typer.Option(
            help="Limit a new service account to this collection (repeatable; 'docs-*' prefixes)."
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Create an API key for a service account; the key is printed once."""
    lifetime = parse_duration(expires_in) if expires_in else None
    with opened(data_dir) as rt, rt.db.begin() as conn:
        now = rt.clock.now()
        actor = operator(conn, now=now)
        found = require_tenant(conn, tenant)
        account = find_service_account(conn, tenant_id=found.id, name=service_account)
        if account is None:
            account = create_account(
                conn,
                actor,
                found,
                name=service_account,
                roles=role or ["viewer"],
                collections=collection or None,
                now=now,
            )
        elif role or collection:
            held = grants_of(conn, "service_account", account.id)
            err.print(
                f"[yellow]note:[/] service account {shown(account.name)} exists: --role and "
                "--collection apply to a new account only and were not used (it holds "
                f"{shown(', '.join(dict.fromkeys(g.role for g in held)) or 'no role')})"
            )
        key = new_key(conn, actor, account.id, expires_in=lifetime, now=now)
    out.print(
        f"API key for service account [bold]{shown(account.name)}[/] "
        f"(id {key.record.id}; shown once, store it now):",
        highlight=False,
    )
    print(key.secret)


def _state(key: ApiKeyRecord, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def _moment(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _key_view(key: ApiKeyRecord, account: ServiceAccount, tenant: str, now: datetime) -> Any:
    return {
        "id": key.id,
        "hint": key.hint,
        "service_account": account.name,
        "service_account_id": account.id,
        "tenant": tenant,
        "status": _state(key, now),
        "created_at": _moment(key.created_at),
        "expires_at": _moment(key.expires_at),
        "revoked_at": _moment(key.revoked_at),
    }


@key_app.command("list")
def key_list(
    service_account: Annotated[
        str | None,
        typer.Option("--service-account", help="Only this account's keys.", show_default=False),
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(help="Only this tenant's keys.", show_default=False)
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Show revoked and expired keys too.")
    ] = False,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """List API keys (ids and hints, never the keys) with their account and status."""
    with opened(data_dir) as rt, rt.db.read() as conn:
        now = rt.clock.now()
        tenant_id = None if tenant is None else require_tenant(conn, tenant).id
        views = []
        for account in list_service_accounts(conn, tenant_id=tenant_id):
            if service_account is not None and account.name != service_account:
                continue
            name = tenant_by_id(conn, account.tenant_id).name
            views += [_key_view(key, account, name, now) for key in list_api_keys(conn, account.id)]
    if not show_all:
        views = [view for view in views if view["status"] == "active"]
    if as_json:
        print_json(views)
        return
    grid = table("API keys", "id", "key", "service account", "tenant", "status", "created",
                 "expires")  # fmt: skip
    for view in views:
        grid.add_row(
            view["id"],
            f"…{view['hint']}",
            view["service_account"],
            view["tenant"],
            view["status"],
            view["created_at"][:16].replace("T", " "),
            "never" if view["expires_at"] is None else view["expires_at"][:16].replace("T", " "),
        )
    out.print(grid)
    if not views:
        out.print("[dim]→ no keys; `bastion key create --service-account NAME` makes one[/]")


@key_app.command("revoke")
def key_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (`bastion key list`).")],
    data_dir: DataDir = None,
) -> None:
    """Revoke an API key: requests with it are refused at once."""
    with opened(data_dir) as rt, rt.db.begin() as conn:
        now = rt.clock.now()
        key = find_api_key(conn, key_id)
        if key is None:
            fail(f"no API key with id '{key_id}'", "see `bastion key list --all` for the ids")
        account = service_account_by_id(conn, key.service_account_id)
        revoked = end_key(conn, operator(conn, now=now), account, key.id, now=now)
    if revoked:
        out.print(f"API key {shown(key.id)} of [bold]{shown(account.name)}[/] is revoked.")
    else:
        out.print(f"API key {shown(key.id)} was already revoked; nothing changed.")
