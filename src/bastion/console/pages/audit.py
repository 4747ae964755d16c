"""The audit log (filters, chain verification) and the assurance policy."""

from __future__ import annotations

import copy
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bastion.console.actions import action, router
from bastion.console.session import Console, Refused
from bastion.console.web import PREFIX, Form, see_other

AUDIT_FILTERS = ("actor", "action", "outcome", "resource")
OUTCOMES = ("", "success", "failure", "denied", "challenge")
ACRS = ("aal1", "aal2", "aal3")
PAGE = 50


def _moment(value: str) -> str | None:
    """A ``datetime-local`` value (read as UTC) as the ISO 8601 the API takes."""
    value = value.strip()
    if not value:
        return None
    return value + ("" if value.endswith("Z") or "+" in value else "+00:00")


async def actor_names(console: Console) -> dict[str, str]:
    """Who each actor id is, as far as the caller may see: usernames and service accounts of
    the tenants it administers (an id it cannot resolve is shown as the id)."""
    names: dict[str, str] = {}
    users = await console.listing("/admin/users")
    for user in users["users"] if users else ():
        names[str(user["id"])] = str(user["username"])
    accounts = await console.listing("/admin/service-accounts")
    for account in accounts["service_accounts"] if accounts else ():
        names[str(account["id"])] = f"{account['name']} (service account)"
    return names


def actor_query(value: str, names: dict[str, str]) -> str:
    """The actor filter as the API takes it: an id, or the id of the name typed."""
    if value in names:
        return value
    ids = [
        id_ for id_, name in names.items() if name == value or name == f"{value} (service account)"
    ]
    return ids[0] if len(ids) == 1 else value


@router.get("/admin/audit")
async def audit_page(request: Request) -> Response:
    console = await Console.load(request)
    params = request.query_params
    chosen = {
        name: params.get(name, "").strip()[:256] for name in (*AUDIT_FILTERS, "since", "until")
    }
    names = await actor_names(console)
    query: dict[str, str | int] = {"limit": PAGE}
    query.update({name: chosen[name] for name in AUDIT_FILTERS if chosen[name]})
    if chosen["actor"]:
        query["actor"] = actor_query(chosen["actor"], names)
    for name in ("since", "until"):
        moment = _moment(chosen[name])
        if moment:
            query[name] = moment
    after = params.get("after", "")
    if after.isdigit():
        query["after"] = int(after)
    error = None
    try:
        found = await console.api("GET", "/admin/audit", query=query)
    except Refused as refused:
        found, error = {"events": [], "next": None}, refused.message
    chain = await console.api("GET", "/admin/audit/verify")
    next_query = {**{k: v for k, v in chosen.items() if v}, "after": found.get("next")}
    return await console.page(
        "audit.html",
        events=found["events"],
        names=names,
        next_query=next_query if found.get("next") is not None else None,
        chosen=chosen,
        outcomes=OUTCOMES,
        chain=chain,
        error=error,
    )


RISK_OUTCOMES = ("allow", "second_factor", "phishing_resistant", "deny")
RISK_THRESHOLDS = ("second_factor", "phishing_resistant", "deny")
RISK_LISTS = (("networks", "trusted"), ("networks", "blocked"))
RISK_COUNTRIES = (("countries", "allowed"), ("countries", "blocked"))


@router.get("/admin/policy")
async def policy_page(request: Request) -> Response:
    console = await Console.load(request)
    policy = await console.api("GET", "/admin/policy")
    return await console.page("policy.html", policy=policy, acrs=ACRS, risk_outcomes=RISK_OUTCOMES)


def _number(text: str) -> int | str:
    """A whole number as typed, or the text itself (the API's 422 names the key)."""
    try:
        return int(text)
    except ValueError:
        return text


def _lines(text: str) -> list[str]:
    return [item for item in text.replace(",", "\n").split() if item]


def risk_document(form: Form, current: dict[str, Any]) -> dict[str, Any]:
    """The ``risk`` section the form describes: thresholds, each reason's weight and
    floor, trusted and blocked networks, allowed and blocked countries, the devices'
    lifetime; every key the form does not carry keeps its value (travel, hours,
    velocity, volume are edited through the API)."""
    risk = copy.deepcopy(current)
    if not any(name.startswith("risk.") for name in form.fields):
        return risk
    thresholds = risk.setdefault("thresholds", {})
    for name in RISK_THRESHOLDS:
        if (value := form.text(f"risk.thresholds.{name}")) != "":
            thresholds[name] = _number(value)
    for code, reason in risk.get("reasons", {}).items():
        if (weight := form.text(f"risk.reasons.{code}.weight")) != "":
            reason["weight"] = _number(weight)
        if f"risk.reasons.{code}.floor" in form.fields:
            reason["floor"] = form.get(f"risk.reasons.{code}.floor")
    for section, key in (*RISK_LISTS, *RISK_COUNTRIES):
        if f"risk.{section}.{key}" in form.fields:
            items = _lines(form.get(f"risk.{section}.{key}"))
            if (section, key) in RISK_COUNTRIES:
                items = [item.upper() for item in items]
            risk.setdefault(section, {})[key] = items
    if (days := form.text("risk.devices.ttl_days")) != "":
        risk.setdefault("devices", {})["ttl_days"] = _number(days)
    return risk


def policy_document(form: Form, current: dict[str, Any]) -> dict[str, Any]:
    """The policy document the form describes: actions it does not name keep their value,
    and so does every section it does not show (``service_account_actions``, the parts of
    ``risk`` it does not edit, and any section added later): saving the page never resets
    them to their defaults."""
    actions: dict[str, Any] = {}
    for name, requirement in current["actions"].items():
        acr = form.get(f"acr:{name}", requirement["acr"])
        max_age = form.text(f"max_age:{name}")
        actions[name] = {
            "acr": acr,
            "max_age": int(max_age) if max_age.isdigit() else None,
        }
    minimum = form.text("password_min_length")
    return {
        **current,
        "mfa_required": form.get("mfa_required") == "on",
        "admin_requires_aal3": form.get("admin_requires_aal3") == "on",
        "password_min_length": int(minimum)
        if minimum.isdigit()
        else current["password_min_length"],
        "actions": actions,
        **({"risk": risk_document(form, current["risk"])} if "risk" in current else {}),
    }


@action(router, "/admin/policy", label="Change the assurance policy", back="/admin/policy")
async def save_policy(console: Console, form: Form, params: dict[str, str]) -> Response:
    current = await console.api("GET", "/admin/policy")
    await console.api("PUT", "/admin/policy", body=policy_document(form, current))
    await console.flash(notice="Policy saved.")
    return see_other(PREFIX + "/admin/policy")
