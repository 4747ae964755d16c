"""``bastion user …``, ``bastion key create`` and ``bastion keys rotate``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from bastion.audit import record
from bastion.authn.unlock import clear_counts, notify_unlocked
from bastion.cli.common import (
    ROLES,
    DataDir,
    fail,
    key_app,
    keys_app,
    opened,
    out,
    parse_duration,
    shown,
    table,
    user_app,
)
from bastion.identity.credentials import revoke_user_sessions
from bastion.identity.grants import grants_of, replace_grants
from bastion.identity.provisioning import provision_user
from bastion.identity.service_accounts import (
    create_api_key,
    create_service_account,
    find_service_account,
)
from bastion.identity.tenants import DEFAULT_TENANT, require_tenant
from bastion.identity.users import find_user, list_users, set_status
from bastion.tokens import rotate_keys

CLI_ACTOR = "cli:operator"


@user_app.command("create")
def user_create(
    name: str,
    role: Annotated[str, typer.Option(help="viewer, developer or admin.")],
    tenant: Annotated[str, typer.Option(help="Tenant name.")] = DEFAULT_TENANT,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Create a user with a role (the password comes from stdin, never from argv)."""
    if role not in ROLES:
        fail(f"unknown role '{role}'", f"use one of: {', '.join(ROLES)}")
    if not password_stdin:
        fail(
            "a password is required",
            'pipe it in: echo "$PW" | bastion user create … --password-stdin',
        )
    password = sys.stdin.readline().rstrip("\r\n")
    with opened(data_dir) as rt, rt.db.begin() as conn:
        now = rt.clock.now()
        found = require_tenant(conn, tenant)
        user = provision_user(
            conn,
            hasher=rt.hasher,
            tenant_id=found.id,
            username=name,
            password=password,
            roles=[role],
            now=now,
        )
        record(
            conn,
            "user.created",
            actor=CLI_ACTOR,
            tenant_id=found.id,
            resource=f"user:{user.id}",
            details={"user_id": user.id, "username": user.username, "roles": [role]},
            now=now,
        )
    out.print(
        f"Created user [bold]{shown(user.username)}[/] ({role}) in tenant {shown(tenant)}. "
        "They enrol an authenticator at first sign-in."
    )


@user_app.command("list")
def user_list(data_dir: DataDir = None) -> None:
    """List users with their tenant, roles and status."""
    with opened(data_dir) as rt, rt.db.read() as conn:
        grid = table("Users", "username", "tenant", "roles", "status", "created")
        from bastion.identity.tenants import tenant_by_id

        for user in list_users(conn, tenant_id=None):
            roles = ", ".join(g.role for g in grants_of(conn, "user", user.id))
            grid.add_row(
                user.username,
                tenant_by_id(conn, user.tenant_id).name,
                roles,
                user.status,
                user.created_at.strftime("%Y-%m-%d %H:%M UTC"),
            )
    out.print(grid)


def _change_status(name: str, status: str, data_dir: object) -> None:
    with opened(data_dir) as rt, rt.db.begin() as conn:  # type: ignore[arg-type]
        now = rt.clock.now()
        user = find_user(conn, name)
        if user is None or user.status == "deleted":
            fail(f"no user named '{name}'", "see `bastion user list`")
        set_status(conn, user.id, status, now=now)  # type: ignore[arg-type]
        revoke_user_sessions(conn, user.id, reason=f"user_{status}", now=now)
        action = "user.suspended" if status == "suspended" else "user.deleted"
        record(
            conn,
            action,
            actor=CLI_ACTOR,
            tenant_id=user.tenant_id,
            resource=f"user:{user.id}",
            details={"user_id": user.id, "username": user.username, "before": user.status},
            now=now,
        )
    out.print(f"User [bold]{shown(user.username)}[/] is now {status}; every session was revoked.")


@user_app.command("suspend")
def user_suspend(name: str, data_dir: DataDir = None) -> None:
    """Suspend a user: sign-ins fail and every live token stops within a second."""
    _change_status(name, "suspended", data_dir)


@user_app.command("delete")
def user_delete(name: str, data_dir: DataDir = None) -> None:
    """Deprovision a user: every token and session dies at once."""
    _change_status(name, "deleted", data_dir)


@user_app.command("unlock")
def user_unlock(name: str, data_dir: DataDir = None) -> None:
    """Clear a user's failed sign-in and second-factor counts: they can sign in at once."""
    with opened(data_dir) as rt:
        with rt.db.begin() as conn:
            user = find_user(conn, name)
            if user is None or user.status == "deleted":
                fail(f"no user named '{name}'", "see `bastion user list`")
            done = clear_counts(conn, rt.authn, user, actor=CLI_ACTOR, now=rt.clock.now())
        notify_unlocked(rt.authn, done, now=rt.clock.now())
    out.print(
        f"User [bold]{shown(user.username)}[/] unlocked: {done.sign_in_failures} failed "
        f"sign-in(s) and {done.second_factor_failures} failed second-factor code(s) forgotten."
    )


@key_app.command("create")
def key_create(
    service_account: Annotated[
        str, typer.Option("--service-account", help="Created if it does not exist.")
    ],
    role: Annotated[str, typer.Option(help="Role for a new service account.")] = "viewer",
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
    if role not in ROLES:
        fail(f"unknown role '{role}'", f"use one of: {', '.join(ROLES)}")
    lifetime = parse_duration(expires_in) if expires_in else None
    with opened(data_dir) as rt, rt.db.begin() as conn:
        now = rt.clock.now()
        found = require_tenant(conn, tenant)
        account = find_service_account(conn, tenant_id=found.id, name=service_account)
        if account is None:
            account = create_service_account(
                conn, tenant_id=found.id, name=service_account, now=now
            )
            replace_grants(
                conn,
                "service_account",
                account.id,
                tenant_id=found.id,
                roles=[role],
                collections=collection or None,
                now=now,
            )
            record(
                conn,
                "service_account.created",
                actor=CLI_ACTOR,
                tenant_id=found.id,
                resource=f"service_account:{account.id}",
                details={
                    "service_account_id": account.id,
                    "name": account.name,
                    "roles": [role],
                },
                now=now,
            )
        key = create_api_key(conn, service_account_id=account.id, expires_in=lifetime, now=now)
        record(
            conn,
            "api_key.created",
            actor=CLI_ACTOR,
            tenant_id=found.id,
            resource=f"api_key:{key.record.id}",
            details={"key_id": key.record.id, "service_account_id": account.id},
            now=now,
        )
    out.print(
        f"API key for service account [bold]{account.name}[/] "
        f"(id {key.record.id}; shown once, store it now):",
        highlight=False,
    )
    print(key.secret)


@keys_app.command("rotate")
def keys_rotate(data_dir: DataDir = None) -> None:
    """Add a new token signing key; old public keys stay in JWKS until their tokens expire."""
    with opened(data_dir) as rt:
        kid = rotate_keys(rt.data_dir / "keys", now=rt.clock.now())
    out.print(
        f"New signing key [bold]{kid}[/] is active (a running server picks it up within a second)."
    )
