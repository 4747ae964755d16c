"""Administration: tenants, users (enrolment links, suspension, roles, factor resets), service
accounts and their keys. Everything through ``/admin``; the API decides who may do what."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from bastion.console.actions import action, router
from bastion.console.session import Console, Refused
from bastion.console.web import PREFIX, ConsoleError, Form, see_other

KEY_LIFETIMES = {"": None, "30": 30 * 86_400, "90": 90 * 86_400, "365": 365 * 86_400}


def _id(value: str) -> str:
    return quote(value, safe="")


def collections_field(form: Form) -> list[str] | None:
    """Comma-separated collection names; empty: every collection of the tenant."""
    names = [name.strip() for name in form.get("collections").split(",") if name.strip()]
    return names or None


async def _roles(console: Console) -> list[str]:
    found = await console.api("GET", "/admin/roles")
    return [str(role["name"]) for role in found["roles"]]


# -- tenants --------------------------------------------------------------------------------


@router.get("/admin/tenants")
async def tenants_page(request: Request) -> Response:
    console = await Console.load(request)
    found = await console.api("GET", "/admin/tenants")
    return await console.page("tenants.html", tenants=found["tenants"])


@action(router, "/admin/tenants", label="Create a tenant", back="/admin/tenants")
async def create_tenant(console: Console, form: Form, params: dict[str, str]) -> Response:
    made = await console.api("POST", "/admin/tenants", body={"name": form.text("name")})
    await console.flash(notice=f"Tenant {made['name']} created.")
    return see_other(PREFIX + "/admin/tenants")


# -- users ----------------------------------------------------------------------------------


async def _principals_page(request: Request, kind: str, template: str) -> Response:
    """A list of users or service accounts, with the roles and tenants its form offers."""
    console = await Console.load(request)
    found = await console.api("GET", f"/admin/{kind}")
    tenants = await console.listing("/admin/tenants")
    return await console.page(
        template,
        listed=found[kind.replace("-", "_")],
        roles=await _roles(console),
        tenants=tenants["tenants"] if tenants else None,
    )


def _grants(form: Form, **fields: str) -> dict[str, Any]:
    """The body creating a user or service account: its fields, roles, collections, tenant."""
    body: dict[str, Any] = {
        **fields,
        "roles": form.getlist("roles"),
        "collections": collections_field(form),
    }
    if form.text("tenant"):
        body["tenant"] = form.text("tenant")
    return body


@router.get("/admin/users")
async def users_page(request: Request) -> Response:
    return await _principals_page(request, "users", "users.html")


@action(router, "/admin/users", label="Create the user {username}", back="/admin/users")
async def create_user(console: Console, form: Form, params: dict[str, str]) -> Response:
    made = await console.api(
        "POST", "/admin/users", body=_grants(form, username=form.text("username"))
    )
    if made.get("enrollment"):
        await console.save(revealed={"kind": "enrolment", "for": made["id"], **made["enrollment"]})
    await console.flash(notice=f"User {made['username']} created.")
    return see_other(f"{PREFIX}/admin/users/{_id(made['id'])}")


@router.get("/admin/users/{user_id}")
async def user_page(request: Request, user_id: str) -> Response:
    console = await Console.load(request)
    try:
        user = await console.api("GET", f"/admin/users/{_id(user_id)}")
    except Refused as refused:
        raise ConsoleError(refused.status, refused.message) from None
    revealed = await console.take("revealed")
    link = revealed if revealed and revealed.get("for") == user_id else None
    return await console.page("user.html", user=user, roles=await _roles(console), link=link)


def _user_back() -> str:
    return "/admin/users/{user_id}"


@action(
    router, "/admin/users/{user_id}/roles", label="Change the roles of a user", back=_user_back()
)
async def user_roles(console: Console, form: Form, params: dict[str, str]) -> Response:
    await console.api(
        "PATCH",
        f"/admin/users/{_id(params['user_id'])}",
        body={"roles": form.getlist("roles"), "collections": collections_field(form)},
    )
    await console.flash(notice="Roles saved.")
    return see_other(f"{PREFIX}/admin/users/{_id(params['user_id'])}")


@action(
    router, "/admin/users/{user_id}/status", label="Suspend or reactivate a user", back=_user_back()
)
async def user_status(console: Console, form: Form, params: dict[str, str]) -> Response:
    status = form.get("status")
    if status not in ("active", "suspended"):
        raise Refused(400, "Choose active or suspended.")
    await console.api("PATCH", f"/admin/users/{_id(params['user_id'])}", body={"status": status})
    await console.flash(
        notice="User suspended: their sessions have ended."
        if status == "suspended"
        else "User reactivated."
    )
    return see_other(f"{PREFIX}/admin/users/{_id(params['user_id'])}")


@action(
    router,
    "/admin/users/{user_id}/reset-factors",
    label="Reset the factors of a user",
    back=_user_back(),
)
async def user_reset(console: Console, form: Form, params: dict[str, str]) -> Response:
    done = await console.api("POST", f"/admin/users/{_id(params['user_id'])}/reset-factors")
    await console.flash(
        notice=f"{done['factors_removed']} factor(s) removed; the user enrols again."
    )
    return see_other(f"{PREFIX}/admin/users/{_id(params['user_id'])}")


@action(router, "/admin/users/{user_id}/unlock", label="Unlock a user", back=_user_back())
async def user_unlock(console: Console, form: Form, params: dict[str, str]) -> Response:
    done = await console.api("POST", f"/admin/users/{_id(params['user_id'])}/unlock")
    await console.flash(
        notice=f"Unlocked: {done['sign_in_failures']} failed sign-in(s) and "
        f"{done['second_factor_failures']} failed code(s) forgotten."
    )
    return see_other(f"{PREFIX}/admin/users/{_id(params['user_id'])}")


@action(router, "/admin/users/{user_id}/delete", label="Delete a user", back=_user_back())
async def user_delete(console: Console, form: Form, params: dict[str, str]) -> Response:
    if form.get("confirm") != "yes":
        raise Refused(400, "Tick the box to confirm the deletion.")
    await console.api("DELETE", f"/admin/users/{_id(params['user_id'])}")
    await console.flash(notice="User deleted: every token, session and key of theirs is dead.")
    return see_other(PREFIX + "/admin/users")


# -- service accounts and keys --------------------------------------------------------------


@router.get("/admin/service-accounts")
async def accounts_page(request: Request) -> Response:
    return await _principals_page(request, "service-accounts", "service_accounts.html")


@action(
    router,
    "/admin/service-accounts",
    label="Create the service account {name}",
    back="/admin/service-accounts",
)
async def create_account(console: Console, form: Form, params: dict[str, str]) -> Response:
    made = await console.api(
        "POST", "/admin/service-accounts", body=_grants(form, name=form.text("name"))
    )
    await console.flash(notice=f"Service account {made['name']} created.")
    return see_other(f"{PREFIX}/admin/service-accounts/{_id(made['id'])}")


@router.get("/admin/service-accounts/{account_id}")
async def account_page(request: Request, account_id: str) -> Response:
    console = await Console.load(request)
    try:
        account = await console.api("GET", f"/admin/service-accounts/{_id(account_id)}")
    except Refused as refused:
        raise ConsoleError(refused.status, refused.message) from None
    revealed = await console.take("revealed")
    key = revealed if revealed and revealed.get("for") == account_id else None
    return await console.page("service_account.html", account=account, key=key)


@action(
    router,
    "/admin/service-accounts/{account_id}/keys",
    label="Create an API key",
    back="/admin/service-accounts/{account_id}",
)
async def create_key(console: Console, form: Form, params: dict[str, str]) -> Response:
    lifetime = KEY_LIFETIMES.get(form.get("expires_in"))
    made = await console.api(
        "POST",
        f"/admin/service-accounts/{_id(params['account_id'])}/keys",
        body={"expires_in": lifetime} if lifetime else {},
    )
    await console.save(revealed={"kind": "key", "for": params["account_id"], "key": made["key"]})
    return see_other(f"{PREFIX}/admin/service-accounts/{_id(params['account_id'])}")


@action(
    router,
    "/admin/service-accounts/{account_id}/keys/{key_id}/revoke",
    label="Revoke an API key",
    back="/admin/service-accounts/{account_id}",
)
async def revoke_key(console: Console, form: Form, params: dict[str, str]) -> Response:
    account, key = _id(params["account_id"]), _id(params["key_id"])
    await console.api("DELETE", f"/admin/service-accounts/{account}/keys/{key}")
    await console.flash(notice="The key is revoked.")
    return see_other(f"{PREFIX}/admin/service-accounts/{account}")


@action(
    router,
    "/admin/service-accounts/{account_id}/delete",
    label="Delete a service account",
    back="/admin/service-accounts/{account_id}",
)
async def delete_account(console: Console, form: Form, params: dict[str, str]) -> Response:
    if form.get("confirm") != "yes":
        raise Refused(400, "Tick the box to confirm the deletion.")
    await console.api("DELETE", f"/admin/service-accounts/{_id(params['account_id'])}")
    await console.flash(notice="Service account deleted; its keys no longer work.")
    return see_other(PREFIX + "/admin/service-accounts")
