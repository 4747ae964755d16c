"""Sign-in (password, then a second factor), sign-out, and the one-time setup links.

Before sign-in there is no session, so the forms are protected by a signed double-submit
token (``pre_token``: an HMAC of a random cookie value under the master key) and the
origin check. Every failed sign-in shows the same message.

"Remember this device" on the second step asks the API for a remembered-device
credential (``remember_device``); the console keeps it in its own cookie (HttpOnly,
SameSite=Strict, Secure under TLS, ``Path=/console``: never readable by script, never
sent to the API's paths) and presents it as ``device_id`` at the next sign-in.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bastion.authn.console_sessions import delete_console_session, session_key
from bastion.console.actions import router
from bastion.console.dispatch import call_api
from bastion.console.session import (
    COOKIE,
    Console,
    api_message,
    runtime_of,
    start_session,
    token_set,
)
from bastion.console.web import (
    PREFIX,
    SignInRequired,
    check_token,
    clear_cookie,
    read_cookie,
    read_device_cookie,
    read_form,
    refuse_cross_site,
    render,
    same_origin,
    see_other,
    set_cookie,
    set_device_cookie,
    settings_of,
)
from bastion.console.webauthn import factor_proof, usable_methods, webauthn_available

PRE_COOKIE = "bastion_pre"
FAILED = "Sign-in failed. Check your username and password and try again."
THROTTLED = "Too many sign-in attempts. Wait a few minutes, then try again."
NOTICES = {
    "ended": "Your session has ended. Sign in again.",
    "signed_out": "You are signed out.",
    "enrolled": "Your authenticator is set up. Sign in with it now.",
    "admin_created": "The administrator account is created. Sign in to set up its second factor.",
    "password_set": "Your password is set. Sign in to set up your second factor.",
    "expired": "The sign-in took too long. Start again.",
    "no_factor": "This account has no second factor the console can use yet.",
    "webauthn_unavailable": "Your security keys cannot be used at this address: browsers "
    "refuse them when the console is reached by an IP address. Ask the operator to serve "
    "Bastion under a domain name (BASTION_PUBLIC_URL), or use another factor.",
}


def pre_token(request: Request, value: str) -> str:
    sealer = runtime_of(request).sealer
    return sealer.fingerprint(value.encode(), context=b"console pre-session csrf")


def _pre_form(request: Request) -> tuple[str, str | None]:
    """(the form token, a new cookie value to set or None)."""
    value = read_cookie(request, PRE_COOKIE)
    fresh = None
    if not value or len(value) > 128:
        value = fresh = secrets.token_urlsafe(32)
    return pre_token(request, value), fresh


def check_pre(request: Request, presented: str) -> None:
    value = read_cookie(request, PRE_COOKIE)
    if (
        not same_origin(request)
        or not value
        or len(value) > 128
        or not check_token(presented, pre_token(request, value))
    ):
        refuse_cross_site(request)


def anonymous_page(
    request: Request, template: str, *, status: int = 200, **context: Any
) -> Response:
    token, fresh = _pre_form(request)
    response = render(
        template, status=status, csrf=token, me={}, stage="", flash={}, sticky={}, **context
    )
    if fresh is not None:
        set_cookie(response, settings_of(request), PRE_COOKIE, fresh)
    return response


@router.get("")
async def home(request: Request) -> Response:
    console = await Console.load(request)
    return await console.page("home.html")


@router.get("/sign-in")
async def sign_in_page(request: Request, notice: str = "") -> Response:
    return anonymous_page(
        request,
        "sign_in.html",
        notice=NOTICES.get(notice),
        error=None,
        username="",
        passkeys=webauthn_available(request),
    )


async def _drop_current(request: Request) -> None:
    """A sign-in replaces whatever console session the browser had."""
    cookie = read_cookie(request, COOKIE)
    if not cookie:
        return
    rt = runtime_of(request)

    def drop() -> None:
        with rt.db.begin() as conn:
            delete_console_session(conn, session_key(cookie))

    await run_in_threadpool(drop)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await read_form(request)
    check_pre(request, form.get("csrf"))
    username = form.text("username")
    response = await call_api(
        request,
        "POST",
        "/auth/login",
        body={
            "username": username,
            "password": form.get("password"),
            **({"device_id": device} if (device := read_device_cookie(request)) else {}),
        },
    )
    if response.status != 200:
        message = THROTTLED if response.status == 429 else FAILED
        return anonymous_page(
            request,
            "sign_in.html",
            status=429 if response.status == 429 else 401,
            notice=None,
            error=message,
            username=username,
            passkeys=webauthn_available(request),
        )
    return await signed_in_step(request, response.json(), username=username)


async def signed_in_step(request: Request, body: dict[str, Any], *, username: str) -> Response:
    """The console session that follows a successful password (or passkey) step."""
    await _drop_current(request)
    rt = runtime_of(request)
    status = body.get("status")
    if status == "mfa_required":
        console = await start_session(
            request,
            stage="signin",
            user_id=None,
            acr=None,
            tokens={},
            state={
                "transaction_id": body["transaction_id"],
                "methods": body["methods"],
                "unavailable": [u.get("code") for u in body.get("unavailable") or []],
                "username": username,
            },
        )
        return console.send_cookie(see_other(PREFIX + "/sign-in/verify"))
    tokens = token_set(body, rt.clock.now())
    if status == "enrollment_required":
        console = await start_session(
            request, stage="enrolment", user_id=None, acr="aal1", tokens=tokens, state={}
        )
        return console.send_cookie(see_other(PREFIX + "/enrol"))
    me = await _whoami(request, body)
    console = await start_session(
        request, stage="active", user_id=me["id"], acr=body["acr"], tokens=tokens, state={}
    )
    return console.send_cookie(see_other(PREFIX))


async def _whoami(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    response = await call_api(request, "GET", "/me", token=body["access_token"])
    if response.status != 200:
        raise SignInRequired("ended")
    me: dict[str, Any] = response.json()
    return me


async def _finish(console: Console, body: dict[str, Any]) -> Response:
    """The second factor is verified: a new session (new cookie) at the reached acr, and
    the remembered-device cookie when one was issued."""
    me = await _whoami(console.request, body)
    await console.rotate(
        stage="active",
        acr=body["acr"],
        user_id=me["id"],
        tokens=token_set(body, console.rt.clock.now()),
    )
    response = console.send_cookie(see_other(PREFIX))
    credential = body.get("device_credential")
    if isinstance(credential, str) and credential:
        set_device_cookie(response, settings_of(console.request), credential)
    return response


@router.get("/sign-in/verify")
async def verify_page(request: Request, method: str = "") -> Response:
    console = await Console.load(request, stages=("signin",))
    return await _verify_form(console, method, error=None)


async def _verify_form(
    console: Console, method: str, *, error: str | None, status: int = 200
) -> Response:
    usable = usable_methods(console.request, console.state["methods"])
    if not usable:
        await console.end()
        unavailable = console.state.get("unavailable") or []
        raise SignInRequired(
            "webauthn_unavailable" if "webauthn_unavailable" in unavailable else "no_factor"
        )
    chosen = method if method in usable else usable[0]
    return await console.page(
        "verify.html",
        status=status,
        methods=usable,
        method=chosen,
        error=error,
        username=console.state.get("username", ""),
    )


@router.post("/sign-in/verify")
async def verify(request: Request) -> Response:
    console = await Console.load(request, stages=("signin",))
    form = await read_form(request)
    console.check_csrf(form.get("csrf"))
    method = form.get("method")
    transaction = quote(console.state["transaction_id"], safe="")
    response = await call_api(
        request,
        "POST",
        f"/auth/login/{transaction}/verify",
        body=factor_proof(form),
    )
    if response.status == 200:
        body = response.json()
        if body.get("status") == "mfa_required":
            await console.save(methods=body["methods"])
            return see_other(PREFIX + "/sign-in/verify")
        return await _finish(console, body)
    message, code = api_message(response)
    if code == "invalid_transaction" or "sign in again" in message:
        await console.end()
        response_out = see_other(PREFIX + "/sign-in?notice=expired")
        clear_cookie(response_out, settings_of(request), COOKIE)
        return response_out
    return await _verify_form(console, method, error="The code is not valid.", status=401)


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    console = await Console.load(request, stages=("signin", "enrolment", "active"))
    form = await read_form(request)
    console.check_csrf(form.get("csrf"))
    if console.session.tokens.get("access"):
        await call_api(request, "POST", "/auth/logout", token=console.session.tokens["access"])
    await console.end()
    response = see_other(PREFIX + "/sign-in?notice=signed_out")
    clear_cookie(response, settings_of(request), COOKIE)
    return response


# -- one-time links: the first administrator, and users created without a password --------

SETUP_PAGES = {
    "setup": {
        "title": "Create the first administrator",
        "button": "Create administrator",
        "api": "/setup",
        "ask_username": True,
        "done": "admin_created",
    },
    "enroll": {
        "title": "Choose your password",
        "button": "Set password",
        "api": "/setup/enroll",
        "ask_username": False,
        "done": "password_set",
    },
}


def _setup_page(
    request: Request,
    kind: str,
    *,
    error: str | None = None,
    status: int = 200,
    username: str = "admin",
) -> Response:
    return anonymous_page(
        request,
        "setup.html",
        status=status,
        page=SETUP_PAGES[kind],
        kind=kind,
        error=error,
        username=username,
    )


@router.get("/setup")
async def setup_page(request: Request) -> Response:
    return _setup_page(request, "setup")


@router.get("/enroll")
async def enroll_page(request: Request) -> Response:
    return _setup_page(request, "enroll")


async def _claim(request: Request, kind: str) -> Response:
    form = await read_form(request)
    check_pre(request, form.get("csrf"))
    page = SETUP_PAGES[kind]
    body = {"token": form.text("token"), "password": form.get("password")}
    if page["ask_username"]:
        body["username"] = form.text("username")
    response = await call_api(request, "POST", str(page["api"]), body=body)
    if response.status >= 400:
        message, _ = api_message(response)
        return _setup_page(
            request,
            kind,
            error=message,
            status=response.status,
            username=form.text("username") or "admin",
        )
    return see_other(f"{PREFIX}/sign-in?notice={page['done']}")


@router.post("/setup")
async def setup(request: Request) -> Response:
    return await _claim(request, "setup")


@router.post("/enroll")
async def enroll(request: Request) -> Response:
    return await _claim(request, "enroll")
