"""Security keys and passkeys: the options for the page's script, and the forms it posts.

Served only when the API serves WebAuthn (``webauthn_available``); the ceremonies
themselves run in ``static/webauthn.js``. The browser gets the public options only; the
API keeps the challenge, bound to the transaction or the user, single use.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bastion.console.actions import action, router
from bastion.console.dispatch import call_api
from bastion.console.pages.account import _new_recovery_codes
from bastion.console.pages.signin import FAILED, anonymous_page, check_pre, signed_in_step
from bastion.console.session import Console, Refused, StepUpNeeded, api_message
from bastion.console.web import (
    PREFIX,
    ConsoleError,
    Form,
    credential_field,
    read_form,
    read_json,
    see_other,
)
from bastion.console.webauthn import webauthn_available

PURPOSE_STAGES = {
    "register": ("enrolment", "active"),
    "sign-in": ("signin",),
    "step-up": ("active",),
}


def _require(request: Request) -> None:
    if not webauthn_available(request):
        raise ConsoleError(404, "Security keys are not available on this server.")


def _refused(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _options_of(result: Any) -> Any:
    return result.get("options", result) if isinstance(result, dict) else result


@router.post("/webauthn/options")
async def webauthn_options(request: Request) -> Response:
    """``{"csrf", "purpose"}`` → ``{"options"}`` (passkey: also ``transaction_id``)."""
    _require(request)
    body = await read_json(request)
    purpose = str(body.get("purpose", ""))
    csrf = str(body.get("csrf", ""))
    if purpose == "passkey":
        check_pre(request, csrf)
        started = await call_api(request, "POST", "/auth/passkey/options")
        if started.status != 200:
            return _refused(FAILED, 400)
        found = started.json()
        return JSONResponse(
            {"transaction_id": found["transaction_id"], "options": found["options"]}
        )
    if purpose not in PURPOSE_STAGES:
        return _refused("Unknown purpose.")
    console = await Console.load(request, stages=PURPOSE_STAGES[purpose])
    console.check_csrf(csrf)
    try:
        if purpose == "register":
            return JSONResponse(
                {"options": _options_of(await console.api("POST", "/me/factors/webauthn/options"))}
            )
        pending = console.state.get("step_up") if purpose == "step-up" else console.state
        if not pending or "transaction_id" not in pending:
            return _refused("Nothing to confirm.", 409)
        transaction = quote(pending["transaction_id"], safe="")
        challenge = await call_api(
            request,
            "POST",
            f"/auth/login/{transaction}/challenge",
            body={"method": "webauthn"},
        )
        if challenge.status != 200:
            return _refused(api_message(challenge)[0], challenge.status)
        return JSONResponse({"options": _options_of(challenge.json())})
    except StepUpNeeded as needed:
        return _refused(needed.message, 401)
    except Refused as refused:
        return _refused(refused.message, refused.status)


async def _register(console: Console, form: Form) -> None:
    credential = credential_field(form)
    if credential is None:
        raise Refused(400, "The security key did not answer; try again.")
    name = form.text("name") or "Security key"
    await console.api(
        "POST", "/me/factors/webauthn", body={"credential": credential, "name": name[:128]}
    )


@action(router, "/account/keys", label="Add a security key or passkey", back="/account")
async def account_key(console: Console, form: Form, params: dict[str, str]) -> Response:
    _require(console.request)
    await _register(console, form)
    await console.flash(notice="The security key is registered.")
    return see_other(PREFIX + "/account")


@action(router, "/enrol/key", label="Register a security key", back="/enrol", stages=("enrolment",))
async def enrol_key(console: Console, form: Form, params: dict[str, str]) -> Response:
    _require(console.request)
    await _register(console, form)
    await _new_recovery_codes(console)
    return see_other(PREFIX + "/enrol/recovery-codes")


@router.post("/passkey")
async def passkey_sign_in(request: Request) -> Response:
    """The passkey's answer (no username typed): the same outcomes as a password step."""
    _require(request)
    form = await read_form(request)
    check_pre(request, form.get("csrf"))
    response = await call_api(
        request,
        "POST",
        "/auth/passkey/verify",
        body={"transaction_id": form.text("transaction_id"), "credential": credential_field(form)},
    )
    if response.status != 200:
        return anonymous_page(
            request,
            "sign_in.html",
            status=401,
            notice=None,
            error=FAILED,
            username="",
            passkeys=True,
        )
    return await signed_in_step(request, response.json(), username="")
