"""First sign-in enrolment, and "My account": factors, recovery codes, sessions,
remembered devices.

An authenticator app is added in two steps (``POST /me/factors/totp``, then activation
with a code); the secret and its QR code stay in the session's sealed state in between.
The QR code is segno's SVG served as an ``<img>`` ``data:`` URI (an image never runs
script, and no markup from the API reaches the page). Recovery codes are shown once,
with a download, until the person says they kept them.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from bastion.console.actions import action, router
from bastion.console.dispatch import call_api
from bastion.console.session import COOKIE, Console
from bastion.console.web import (
    PREFIX,
    Form,
    clear_cookie,
    clear_device_cookie,
    see_other,
    settings_of,
)

ENROLMENT = ("enrolment",)


def qr_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def codes_download(codes: list[str]) -> str:
    text = "Bastion recovery codes (each works once)\n\n" + "\n".join(codes) + "\n"
    return "data:text/plain;charset=utf-8;base64," + base64.b64encode(text.encode()).decode()


async def _totp_page(console: Console, *, back: str, activate: str) -> Response:
    setup = console.state.get("totp_setup")
    return await console.page(
        "totp.html",
        setup=setup,
        qr=qr_data_uri(setup["qr_svg"]) if setup else None,
        back=back,
        activate=activate,
    )


async def _start_totp(console: Console, form: Form) -> None:
    name = form.text("name") or "Authenticator app"
    started = await console.api("POST", "/me/factors/totp", body={"name": name[:128]})
    await console.save(
        totp_setup={
            "factor_id": started["factor_id"],
            "secret": started["secret"],
            "qr_svg": started["qr_svg"],
            "name": name[:128],
        }
    )


async def _activate_totp(console: Console, form: Form) -> None:
    setup = console.state.get("totp_setup")
    if setup is None:
        return
    factor = quote(setup["factor_id"], safe="")
    await console.api(
        "POST", f"/me/factors/totp/{factor}/activate", body={"code": form.text("code")}
    )
    await console.save(totp_setup=None)


async def _new_recovery_codes(console: Console) -> None:
    made = await console.api("POST", "/me/recovery-codes")
    await console.save(recovery_codes=made["codes"])


async def _codes_page(console: Console, *, done: str) -> Response:
    codes = console.state.get("recovery_codes")
    if not codes:
        return see_other(PREFIX + ("/account" if console.session.stage == "active" else "/enrol"))
    return await console.page(
        "recovery_codes.html", codes=codes, download=codes_download(codes), done=done
    )


# -- enrolment at the first sign-in (an enrolment-only session) -----------------------------


@router.get("/enrol")
async def enrol_page(request: Request) -> Response:
    console = await Console.load(request, stages=ENROLMENT)
    if console.state.get("recovery_codes"):
        return see_other(PREFIX + "/enrol/recovery-codes")
    return await _totp_page(console, back="", activate="/enrol/totp/activate")


@action(router, "/enrol/totp", label="Set up an authenticator app", back="/enrol", stages=ENROLMENT)
async def enrol_totp(console: Console, form: Form, params: dict[str, str]) -> Response:
    await _start_totp(console, form)
    return see_other(PREFIX + "/enrol")


@action(
    router,
    "/enrol/totp/activate",
    label="Activate the authenticator app",
    back="/enrol",
    stages=ENROLMENT,
)
async def enrol_activate(console: Console, form: Form, params: dict[str, str]) -> Response:
    await _activate_totp(console, form)
    await _new_recovery_codes(console)
    return see_other(PREFIX + "/enrol/recovery-codes")


@router.get("/enrol/recovery-codes")
async def enrol_codes(request: Request) -> Response:
    console = await Console.load(request, stages=ENROLMENT)
    return await _codes_page(console, done="/enrol/done")


@action(router, "/enrol/done", label="Finish the set-up", back="/enrol", stages=ENROLMENT)
async def enrol_done(console: Console, form: Form, params: dict[str, str]) -> Response:
    """The enrolment-only session ends; the person signs in with the new factor."""
    await call_api(console.request, "POST", "/auth/logout", token=console.session.tokens["access"])
    await console.end()
    response = see_other(PREFIX + "/sign-in?notice=enrolled")
    clear_cookie(response, settings_of(console.request), COOKIE)
    return response


# -- my account ---------------------------------------------------------------------------


@router.get("/account")
async def account_page(request: Request) -> Response:
    console = await Console.load(request)
    factors = await console.api("GET", "/me/factors")
    sessions = await console.api("GET", "/me/sessions")
    devices = await console.api("GET", "/me/devices")
    return await console.page("account.html", factors=factors, sessions=sessions, devices=devices)


@action(router, "/account/totp", label="Add an authenticator app", back="/account")
async def account_totp(console: Console, form: Form, params: dict[str, str]) -> Response:
    await _start_totp(console, form)
    return see_other(PREFIX + "/account/totp")


@router.get("/account/totp")
async def account_totp_page(request: Request) -> Response:
    console = await Console.load(request)
    if not console.state.get("totp_setup"):
        return see_other(PREFIX + "/account")
    return await _totp_page(console, back="/account", activate="/account/totp/activate")


@action(
    router, "/account/totp/activate", label="Activate the authenticator app", back="/account/totp"
)
async def account_activate(console: Console, form: Form, params: dict[str, str]) -> Response:
    await _activate_totp(console, form)
    await console.flash(notice="The authenticator app is active.")
    return see_other(PREFIX + "/account")


@action(
    router, "/account/factors/{factor_id}/remove", label="Remove an authenticator", back="/account"
)
async def remove_factor(console: Console, form: Form, params: dict[str, str]) -> Response:
    await console.api("DELETE", f"/me/factors/{quote(params['factor_id'], safe='')}")
    await console.flash(notice="The authenticator is removed.")
    return see_other(PREFIX + "/account")


@action(
    router, "/account/factors/{factor_id}/rename", label="Rename an authenticator", back="/account"
)
async def rename_factor(console: Console, form: Form, params: dict[str, str]) -> Response:
    name = form.text("name")
    await console.api(
        "PATCH", f"/me/factors/{quote(params['factor_id'], safe='')}", body={"name": name}
    )
    await console.flash(notice="The authenticator is renamed.")
    return see_other(PREFIX + "/account")


@action(router, "/account/recovery-codes", label="Make new recovery codes", back="/account")
async def regenerate_codes(console: Console, form: Form, params: dict[str, str]) -> Response:
    await _new_recovery_codes(console)
    return see_other(PREFIX + "/account/recovery-codes")


@router.get("/account/recovery-codes")
async def account_codes(request: Request) -> Response:
    console = await Console.load(request)
    return await _codes_page(console, done="/account/recovery-codes/done")


@action(router, "/account/recovery-codes/done", label="Hide the recovery codes", back="/account")
async def codes_done(console: Console, form: Form, params: dict[str, str]) -> Response:
    await console.save(recovery_codes=None)
    return see_other(PREFIX + "/account")


@action(router, "/account/devices/{device_id}/revoke", label="Forget a device", back="/account")
async def revoke_device(console: Console, form: Form, params: dict[str, str]) -> Response:
    await console.api("DELETE", f"/me/devices/{quote(params['device_id'], safe='')}")
    await console.flash(notice="The device is forgotten: it will be asked for a second factor.")
    return see_other(PREFIX + "/account")


@action(router, "/account/sessions/{session_id}/revoke", label="End a session", back="/account")
async def revoke_session(console: Console, form: Form, params: dict[str, str]) -> Response:
    await console.api("DELETE", f"/me/sessions/{quote(params['session_id'], safe='')}")
    await console.flash(notice="The session is ended.")
    return see_other(PREFIX + "/account")


async def _other_sessions(console: Console) -> list[dict[str, Any]]:
    sessions: list[dict[str, Any]] = await console.api("GET", "/me/sessions")
    return [s for s in sessions if not s.get("current")]


@action(router, "/account/sessions/revoke-others", label="End my other sessions", back="/account")
async def revoke_others(console: Console, form: Form, params: dict[str, str]) -> Response:
    ended = 0
    for session in await _other_sessions(console):
        await console.api("DELETE", f"/me/sessions/{quote(session['id'], safe='')}")
        ended += 1
    await console.flash(notice=f"{ended} other session(s) ended.")
    return see_other(PREFIX + "/account")


@action(router, "/account/sign-out-everywhere", label="Sign out everywhere", back="/account")
async def sign_out_everywhere(console: Console, form: Form, params: dict[str, str]) -> Response:
    """Every session of this person ends (the API's and every console's) and every
    remembered device is forgotten: ``DELETE /me/sessions``."""
    await console.api("DELETE", "/me/sessions")
    await console.end()
    response = see_other(PREFIX + "/sign-in?notice=signed_out")
    clear_cookie(response, settings_of(console.request), COOKIE)
    clear_device_cookie(response, settings_of(console.request))  # revoked: no use keeping it
    return response
