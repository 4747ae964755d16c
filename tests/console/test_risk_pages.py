"""The console's risk views (issue 15): remembered devices on My account, the risk
decisions page for admins, and a policy page that keeps the ``risk`` section."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from bastion.authn.devices import devices_of, remember
from bastion.authz import Policy
from bastion.identity.rules import load_policy, save_policy
from bastion.identity.tenants import tenant_by_name
from bastion.identity.users import find_user, user_by_id
from tests.console.helpers import Console
from tests.support.risk import TOKYO

BLOCKED_JAPAN = {"risk": {"countries": {"blocked": ["JP"]}, "thresholds": {"deny": 120}}}


def default_policy(console: Console, document: dict[str, object]) -> None:
    with console.runtime.db.begin() as conn:
        tenant = tenant_by_name(conn, "default")
        assert tenant is not None
        save_policy(conn, tenant.id, Policy.from_document(document), now=console.clock.now())


def test_my_account_lists_remembered_devices_and_forgets_one(console: Console) -> None:
    browser, _ = console.signed_in("devi")
    user_id = console_user_id(console, "devi")
    with console.runtime.db.begin() as conn:
        remember(
            conn, user_by_id(conn, user_id), name="Work laptop", user_agent=None, ip="10.0.0.5",
            session_id="ses_test", now=console.clock.now(),
        )  # fmt: skip
    page = browser.get("/console/account")
    assert "Remembered devices" in page.text
    assert "Work laptop" in page.text
    with console.runtime.db.read() as conn:
        (device,) = devices_of(conn, user_id)
    done = browser.post(f"/console/account/devices/{device.id}/revoke")
    assert done.url.path == "/console/account"
    assert "The device is forgotten" in done.text
    with console.runtime.db.read() as conn:
        (device,) = devices_of(conn, user_id)
    assert device.revoked_at is not None
    assert "forgotten" in done.text


def console_user_id(console: Console, username: str) -> str:
    with console.runtime.db.read() as conn:
        user = find_user(conn, username)
    assert user is not None
    return user.id


def test_admins_see_the_risk_decisions_with_their_reasons(console: Console) -> None:
    default_policy(console, BLOCKED_JAPAN)
    from_japan = TestClient(console.app, client=(TOKYO, 50000), raise_server_exceptions=False)
    refused = from_japan.post("/auth/login", json={"username": "nobody", "password": "guess 1"})
    assert refused.status_code == 401
    admin, _ = console.admin()
    page = admin.get("/console/admin/risk")
    assert page.status_code == 200
    assert "Risk decisions" in page.text
    assert "country_blocked" in page.text
    assert TOKYO in page.text
    assert "unknown username" in page.text
    assert 'href="/console/admin/risk"' in page.text  # in the admin's navigation
    viewer, _ = console.signed_in("vic", role="viewer")
    assert 'href="/console/admin/risk"' not in viewer.get("/console").text
    assert "country_blocked" not in viewer.get("/console/admin/risk").text


def test_saving_the_policy_page_keeps_the_risk_section(console: Console) -> None:
    default_policy(console, BLOCKED_JAPAN)
    admin, _ = console.admin()
    page = admin.get("/console/admin/policy").text
    form = {"mfa_required": "on", "password_min_length": "12"}
    form.update(re.findall(r'name="(max_age:[^"]+)" type="number"[^>]*value="([^"]*)"', page))
    saved = admin.post("/console/admin/policy", form)
    assert "Policy saved." in saved.text
    with console.runtime.db.read() as conn:
        tenant = tenant_by_name(conn, "default")
        assert tenant is not None
        policy = load_policy(conn, tenant.id)
    assert policy.password_min_length == 12
    assert policy.risk_document == BLOCKED_JAPAN["risk"]


def policy_form(page: str) -> dict[str, str]:
    """The policy page's fields as a browser would send them (checkboxes left out)."""
    fields = dict(re.findall(r'name="((?:max_age|risk\.)[^"]+)"[^>]*value="([^"]*)"', page))
    for name, body in re.findall(r'name="(risk\.[^"]+)" rows="\d+">([^<]*)</textarea>', page):
        fields[name] = body
    for name, chosen in re.findall(
        r'name="(risk\.reasons\.[^"]+\.floor)">.*?<option selected>([a-z_]+)</option>', page
    ):
        fields[name] = chosen
    return {"mfa_required": "on", **fields}


def test_admins_edit_the_risk_section_on_the_policy_page(console: Console) -> None:
    default_policy(console, BLOCKED_JAPAN)
    admin, _ = console.admin()
    page = admin.get("/console/admin/policy").text
    assert 'name="risk.thresholds.deny"' in page
    assert 'name="risk.reasons.impossible_travel.floor"' in page
    form = policy_form(page)
    assert form["risk.thresholds.deny"] == "120"
    assert form["risk.countries.blocked"] == "JP"
    assert form["risk.reasons.impossible_travel.floor"] == "phishing_resistant"
    form.update(
        {
            "risk.thresholds.second_factor": "25",
            "risk.reasons.impossible_travel.floor": "deny",
            "risk.reasons.hours_unusual.weight": "0",
            "risk.networks.trusted": "10.1.0.0/16\r\n192.0.2.0/24",
            "risk.countries.blocked": "jp, kp",
            "risk.devices.ttl_days": "14",
        }
    )
    saved = admin.post("/console/admin/policy", form)
    assert "Policy saved." in saved.text, saved.text[:500]
    with console.runtime.db.read() as conn:
        tenant = tenant_by_name(conn, "default")
        assert tenant is not None
        risk = load_policy(conn, tenant.id).risk_document
    assert risk == {
        "thresholds": {"second_factor": 25, "deny": 120},
        "reasons": {
            "impossible_travel": {"floor": "deny"},
            "hours_unusual": {"weight": 0},
        },
        "networks": {"trusted": ["10.1.0.0/16", "192.0.2.0/24"]},
        "countries": {"blocked": ["JP", "KP"]},
        "devices": {"ttl_days": 14},
    }


def test_a_bad_risk_setting_on_the_policy_page_is_refused_by_name(console: Console) -> None:
    default_policy(console, BLOCKED_JAPAN)
    admin, _ = console.admin()
    form = policy_form(admin.get("/console/admin/policy").text)
    form["risk.networks.blocked"] = "10.0.0.1/8"  # host bits set: a probable typo
    form["risk.thresholds.deny"] = "many"
    refused = admin.post("/console/admin/policy", form)
    assert "Policy saved." not in refused.text
    assert "risk." in refused.text  # the API's 422 names the key
    with console.runtime.db.read() as conn:
        tenant = tenant_by_name(conn, "default")
        assert tenant is not None
        assert load_policy(conn, tenant.id).risk_document == BLOCKED_JAPAN["risk"]
