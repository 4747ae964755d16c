"""Console actions (every state-changing form) and step-up in place.

An action is registered data (``Action``): its path, what it does in words, where to go
when it is refused, and the coroutine that performs it through the API. Every action
checks the CSRF token and the request's origin first. When the API answers
``insufficient_user_authentication`` (RFC 9470), the action, its path parameters and its
form fields are kept in the session's sealed state, the step-up runs
(``POST /auth/step-up``, then the factor the person has), and the action is performed
again with the same input: nothing the person typed is lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bastion.console.dispatch import call_api
from bastion.console.session import Console, Refused, StepUpNeeded, api_message
from bastion.console.web import PREFIX, ConsoleRoute, Form, read_form, see_other
from bastion.console.webauthn import factor_proof, usable_methods

Run = Callable[[Console, Form, dict[str, str]], Awaitable[Response]]
SECRET_FIELDS = ("csrf", "password", "code")  # never put back into a form after a refusal


@dataclass(frozen=True)
class Action:
    path: str  # under /console, with {parameters}
    label: str  # what the person asked for, e.g. "Delete the collection {name}"
    back: str  # the page to return to when the API refuses
    run: Run
    stages: tuple[str, ...] = ("active",)


ACTIONS: dict[str, Action] = {}
router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


def fill(template: str, params: dict[str, str]) -> str:
    return template.format(**{key: quote(value, safe="") for key, value in params.items()})


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "…"


def describe(label: str, form: Form, params: dict[str, str]) -> str:
    """The action in words, with the names the person typed or clicked (not secrets)."""
    values = _Blank({name: values[0] for name, values in sticky(form).items() if values})
    values.update(params)
    return label.format_map(values)


def sticky(form: Form) -> dict[str, list[str]]:
    return {
        name: values
        for name, values in form.fields.items()
        if not any(secret in name for secret in SECRET_FIELDS)
    }


def action(
    target: APIRouter,
    path: str,
    *,
    label: str,
    back: str,
    stages: tuple[str, ...] = ("active",),
) -> Callable[[Run], Run]:
    """Register ``POST /console{path}`` as an action (see the module docstring)."""

    def register(run: Run) -> Run:
        if path in ACTIONS:
            raise ValueError(f"two console actions at {path}")
        ACTIONS[path] = Action(path, label, back, run, stages)

        async def endpoint(request: Request) -> Response:
            console = await Console.load(request, stages=stages)
            form = await read_form(request)
            console.check_csrf(form.get("csrf"))
            return await perform(console, ACTIONS[path], form, dict(request.path_params))

        endpoint.__name__ = "console_" + run.__name__
        target.add_api_route(path, endpoint, methods=["POST"])
        return run

    return register


async def perform(
    console: Console, act: Action, form: Form, params: dict[str, str], *, stepped_up: bool = False
) -> Response:
    try:
        return console.send_cookie(await act.run(console, form, params))
    except StepUpNeeded as needed:
        if stepped_up:
            await console.flash(error=f"Still refused after confirming: {needed.message}")
            return see_other(PREFIX + fill(act.back, params))
        return await _begin_step_up(console, act, form, params, needed)
    except Refused as refused:
        await console.flash(error=refused.message, form=sticky(form))
        return see_other(PREFIX + fill(act.back, params))


async def _begin_step_up(
    console: Console, act: Action, form: Form, params: dict[str, str], needed: StepUpNeeded
) -> Response:
    try:
        started = await console.api("POST", "/auth/step-up", body={"acr_values": needed.acr})
    except Refused as refused:
        await console.flash(error=f"{needed.message} {refused.message}", form=sticky(form))
        return see_other(PREFIX + fill(act.back, params))
    await console.save(
        step_up={
            "transaction_id": started["transaction_id"],
            "methods": started["methods"],
            "acr": needed.acr,
            "reason": needed.message,
            "action": act.path,
            "params": params,
            "form": form.without("csrf"),
            "label": describe(act.label, form, params),
        }
    )
    return see_other(PREFIX + "/step-up")


@router.get("/step-up")
async def step_up_page(request: Request, method: str = "") -> Response:
    console = await Console.load(request)
    pending = console.state.get("step_up")
    if pending is None:
        return see_other(PREFIX)
    usable = usable_methods(request, pending["methods"])
    chosen = method if method in usable else (usable[0] if usable else "")
    return await console.page(
        "step_up.html", pending=pending, methods=usable, method=chosen, error=None
    )


@router.post("/step-up")
async def step_up_verify(request: Request) -> Response:
    console = await Console.load(request)
    form = await read_form(request)
    console.check_csrf(form.get("csrf"))
    pending: dict[str, Any] | None = console.state.get("step_up")
    if pending is None:
        return see_other(PREFIX)
    method = form.get("method")
    response = await call_api(
        request,
        "POST",
        f"/auth/login/{quote(pending['transaction_id'], safe='')}/verify",
        body=factor_proof(form),
    )
    body: dict[str, Any] = response.json() if response.status == 200 else {}
    if body.get("status") == "mfa_required":
        await console.save(step_up={**pending, "methods": body["methods"]})
        return see_other(PREFIX + "/step-up")
    if response.status != 200:
        message, _ = api_message(response)
        usable = usable_methods(request, pending["methods"])
        return await console.page(
            "step_up.html",
            status=response.status,
            pending=pending,
            methods=usable,
            method=method if method in usable else (usable[0] if usable else ""),
            error=message,
        )
    old_refresh = console.session.tokens.get("refresh")
    await console.replace_tokens(body, acr=body["acr"])
    if old_refresh:  # the session before the step-up is done with
        await call_api(request, "POST", "/auth/revoke", body={"token": old_refresh})
    await console.save(step_up=None)
    act = ACTIONS[pending["action"]]
    return await perform(
        console, act, Form(pending["form"]), dict(pending["params"]), stepped_up=True
    )


@router.post("/step-up/cancel")
async def step_up_cancel(request: Request) -> Response:
    console = await Console.load(request)
    form = await read_form(request)
    console.check_csrf(form.get("csrf"))
    pending = console.state.get("step_up")
    await console.save(step_up=None)
    if pending is None:
        return see_other(PREFIX)
    await console.flash(notice="Cancelled: nothing was changed.")
    return see_other(PREFIX + fill(ACTIONS[pending["action"]].back, pending["params"]))
