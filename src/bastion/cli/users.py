"""``bastion user …`` and ``bastion keys rotate``.

Every change goes through the services the admin API calls (``bastion.identity``,
``bastion.authn.unlock``) with the operator as principal (``common.operator``): the same
rules, and the same audit events with ``cli:operator`` as actor.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from sqlalchemy import Connection

from bastion.authn.unlock import clear_counts, notify_unlocked
from bastion.cli.common import (
    CLI_ACTOR,
    AsJson,
    DataDir,
    fail,
    keys_app,
    opened,
    operator,
    out,
    print_json,
    shown,
    table,
    user_app,
)
from bastion.identity.grants import grant_collections, grants_of
from bastion.identity.lifecycle import (
    UserChange,
    create_user_account,
    delete_user,
    reset_user_factors,
    update_user,
)
from bastion.identity.tenants import DEFAULT_TENANT, require_tenant, tenant_by_id
from bastion.identity.users import User, find_user, list_users

Roles = Annotated[
    list[str],
    typer.Option(
        "--role", help="viewer, developer, admin or a custom role of the tenant (repeatable)."
    ),
]
Collections = Annotated[
    list[str] | None,
    typer.Option(
        "--collection",
        help="Narrow the roles to this collection (repeatable; 'docs-*' is a prefix). "
        "Default: every collection of the tenant.",
        show_default=False,
    ),
]


def _live(conn: Connection, name: str) -> User:
    user = find_user(conn, name)
    if user is None or user.status == "deleted":
        fail(f"no user named '{name}'", "see `bastion user list`")
    return user


def _view(conn: Connection, user: User) -> dict[str, Any]:
    grants = grants_of(conn, "user", user.id)
    return {
        "id": user.id,
        "username": user.username,
        "tenant": tenant_by_id(conn, user.tenant_id).name,
        "roles": list(dict.fromkeys(grant.role for grant in grants)),
        "collections": grant_collections(grants),
        "status": user.status,
        "created_at": user.created_at.isoformat(),
    }


@user_app.command("create")
def user_create(
    name: str,
    role: Roles,
    collection: Collections = None,
    tenant: Annotated[str, typer.Option(help="Tenant name.")] = DEFAULT_TENANT,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """Create a user with one or more roles (the password comes from stdin, never argv)."""
    if not password_stdin:
        fail(
            "a password is required",
            'pipe it in: echo "$PW" | bastion user create … --password-stdin',
        )
    password = sys.stdin.readline().rstrip("\r\n")
    with opened(data_dir) as rt, rt.db.begin() as conn:
        now = rt.clock.now()
        made = create_user_account(
            conn,
            operator(conn, now=now),
            require_tenant(conn, tenant),
            hasher=rt.hasher,
            username=name,
            password=password,
            roles=role,
            collections=collection or None,
            now=now,
        )
        view = _view(conn, made.user)
    if as_json:
        print_json(view)
        return
    narrowed = f", on {', '.join(view['collections'])}" if view["collections"] else ""
    out.print(
        f"Created user [bold]{shown(view['username'])}[/] ({shown(', '.join(view['roles']))}"
        f"{shown(narrowed)}) in tenant {shown(view['tenant'])}. "
        "They enrol an authenticator at first sign-in.",
        highlight=False,
    )


@user_app.command("list")
def user_list(
    tenant: Annotated[
        str | None, typer.Option(help="Only this tenant's users.", show_default=False)
    ] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """List users with their tenant, roles, collections and status."""
    with opened(data_dir) as rt, rt.db.read() as conn:
        tenant_id = None if tenant is None else require_tenant(conn, tenant).id
        views = [_view(conn, user) for user in list_users(conn, tenant_id=tenant_id)]
    if as_json:
        print_json(views)
        return
    grid = table("Users", "username", "tenant", "roles", "collections", "status", "created")
    for view in views:
        grid.add_row(
            view["username"],
            view["tenant"],
            ", ".join(view["roles"]),
            "all" if view["collections"] is None else ", ".join(view["collections"]),
            view["status"],
            view["created_at"][:16].replace("T", " ") + " UTC",
        )
    out.print(grid)


@user_app.command("suspend")
def user_suspend(name: str, data_dir: DataDir = None) -> None:
    """Suspend a user: sign-ins fail and every live token stops within a second."""
    with opened(data_dir) as rt, rt.db.begin() as conn:
        now = rt.clock.now()
        user = _live(conn, name)
        update_user(conn, operator(conn, now=now), user.id, UserChange(status="suspended"),
                    now=now)  # fmt: skip
    out.print(f"User [bold]{shown(user.username)}[/] is now suspended; every session was revoked.")


@user_app.command("delete")
def user_delete(name: str, data_dir: DataDir = None) -> None:
    """Deprovision a user: every token and session dies at once."""
    with opened(data_dir) as rt, rt.db.begin() as conn:
        now = rt.clock.now()
        user = _live(conn, name)
        delete_user(conn, operator(conn, now=now), user.id, now=now)
    out.print(f"User [bold]{shown(user.username)}[/] is now deleted; every session was revoked.")


@user_app.command("unlock")
def user_unlock(name: str, data_dir: DataDir = None) -> None:
    """Clear a user's failed sign-in and second-factor counts: they can sign in at once."""
    with opened(data_dir) as rt:
        with rt.db.begin() as conn:
            user = _live(conn, name)
            done = clear_counts(conn, rt.authn, user, actor=CLI_ACTOR, now=rt.clock.now())
        notify_unlocked(rt.authn, done, now=rt.clock.now())
    out.print(
        f"User [bold]{shown(user.username)}[/] unlocked: {done.sign_in_failures} failed "
        f"sign-in(s) and {done.second_factor_failures} failed second-factor code(s) forgotten."
    )


@user_app.command("reset-factors")
def user_reset_factors(name: str, as_json: AsJson = False, data_dir: DataDir = None) -> None:
    """Remove every second factor of a user (lost phone) and end their sessions; at the
    next sign-in they enrol again. Audited as the admin API's reset."""
    with opened(data_dir) as rt, rt.db.begin() as conn:
        now = rt.clock.now()
        user = _live(conn, name)
        removed = reset_user_factors(conn, operator(conn, now=now), user.id, now=now)
    if as_json:
        print_json({"id": user.id, "username": user.username, "factors_removed": removed})
        return
    out.print(
        f"User [bold]{shown(user.username)}[/]: {removed} factor(s) removed and every session "
        "revoked; they enrol an authenticator at their next sign-in."
    )


@keys_app.command("rotate")
def keys_rotate(data_dir: DataDir = None) -> None:
    """Add a new token signing key; old public keys stay in JWKS until their tokens expire."""
    with opened(data_dir) as rt:
        kid = rt.rotate_keys()
    out.print(
        f"New signing key [bold]{kid}[/] is active (running servers pick it up within a second)."
    )
