"""Adaptive sign-in through the real server (issue 15).

``bastion serve`` runs behind a "proxy" on loopback (``BASTION_TRUSTED_PROXIES=127.0.0.1``),
so each attempt comes "from" the address its ``X-Forwarded-For`` names: real public
addresses the bundled GeoLite2 data places in France, Germany, Australia, Britain, Japan
(tests/support/risk.py; no traffic is sent to them). The tenant ``open`` lets a password
alone through at low risk (``mfa_required: false``), so every extra prompt seen here is
the engine's; its policy blocks one London network and allows viewers only in a window
of hours that is never now.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from bastion.audit import query
from bastion.authn.enrollment import Origin, activate_totp, enroll_totp
from bastion.authz import Policy
from bastion.identity.rules import save_policy
from bastion.identity.tenants import tenant_by_name
from bastion.identity.users import find_user
from tests.support.risk import BERLIN, LONDON, PARIS, SYDNEY, TOKYO
from tests.support.server import ADMIN_PASSWORD, Credentials, ServerProcess, start_server

PROXY = "127.0.0.1"
BLOCKED = "81.2.69.0/24"  # LONDON's network


@pytest.fixture(scope="module")
def proxied(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, Credentials]]:
    data_dir: Path = tmp_path_factory.mktemp("risk") / "data"
    server = start_server(data_dir, env={"BASTION_TRUSTED_PROXIES": PROXY})
    credentials = Credentials(server.data_dir, server.env)
    credentials.user(tenant="open", role="developer", username="setup")  # creates the tenant
    later = datetime.now(UTC) + timedelta(hours=3)
    document = {
        "mfa_required": False,
        "password_min_length": 15,
        "risk": {
            "networks": {"blocked": [BLOCKED]},
            # viewers may sign in only an hour, three hours from now: never during the test
            "hours": {
                "roles": {
                    "viewer": {
                        "from": f"{later.hour:02d}:00",
                        "to": f"{(later.hour + 1) % 24:02d}:00",
                    }
                }
            },
        },
    }
    rt = credentials._runtime()
    try:
        with rt.db.begin() as conn:
            tenant = tenant_by_name(conn, "open")
            assert tenant is not None
            save_policy(conn, tenant.id, Policy.from_document(document), now=rt.clock.now())
    finally:
        rt.close()
    try:
        yield server, credentials
    finally:
        server.stop()


def login(
    server: ServerProcess, username: str, ip: str, password: str = ADMIN_PASSWORD
) -> httpx.Response:
    return httpx.post(
        f"{server.url}/auth/login",
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": ip},
    )


def enrol_totp(server: ServerProcess, access_token: str) -> str:
    auth = {"Authorization": f"Bearer {access_token}"}
    started = httpx.post(f"{server.url}/me/factors/totp", headers=auth)
    assert started.status_code in (200, 201), started.text
    body = started.json()
    activated = httpx.post(
        f"{server.url}/me/factors/totp/{body['factor_id']}/activate",
        headers=auth,
        json={"code": pyotp.TOTP(body["secret"]).now()},
    )
    assert activated.status_code == 200, activated.text
    secret: str = body["secret"]
    return secret


def audit(credentials: Credentials, action: str, username: str) -> list[Any]:
    rt = credentials._runtime()
    try:
        with rt.db.read() as conn:
            page = query(conn, tenant_id=None, action=action, limit=1000)
        return [e for e in page.events if e.details.get("username") == username]
    finally:
        rt.close()


def give_totp(credentials: Credentials, username: str) -> str:
    """An active TOTP factor for ``username``, set up with Bastion's own enrolment code
    (activated with the previous time step's code, so the current one is still unused)."""
    rt = credentials._runtime()
    try:
        with rt.db.begin() as conn:
            now = rt.clock.now()
            user = find_user(conn, username)
            assert user is not None
            started = enroll_totp(
                conn, rt.sealer, user_id=user.id, account_name=username, name="phone",
                now=now, origin=Origin(session_id=None),
            )  # fmt: skip
            code = pyotp.TOTP(started.secret).at(now - timedelta(seconds=30))
            activate_totp(
                conn, rt.sealer, user_id=user.id, factor_id=started.factor_id, code=code, now=now
            )
        return started.secret
    finally:
        rt.close()


def reasons(event: Any) -> set[str]:
    return {reason["reason"] for reason in event.details["risk_reasons"]}


def test_known_country_passes_and_a_new_country_needs_a_second_factor(
    proxied: tuple[ServerProcess, Credentials],
) -> None:
    server, credentials = proxied
    name = credentials.user(tenant="open", role="developer", username="traveller")
    first = login(server, name, PARIS)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "authenticated"
    assert first.json()["acr"] == "aal1"
    enrol_totp(server, first.json()["access_token"])

    again = login(server, name, PARIS)  # the same place: nothing beyond the policy
    assert again.json()["status"] == "authenticated"

    abroad = login(server, name, BERLIN)  # a neighbour: a new country, not impossible travel
    assert abroad.status_code == 200
    body = abroad.json()
    assert body["status"] == "mfa_required"
    assert body["risk"] == {"level": "medium"}
    assert body["methods"] == ["totp"]
    (event,) = audit(credentials, "login.mfa_required", name)
    assert "country_new" in reasons(event)
    assert event.details["risk_level"] == "medium"


def test_paris_then_sydney_at_once_is_refused_like_a_wrong_password(
    proxied: tuple[ServerProcess, Credentials],
) -> None:
    server, credentials = proxied
    name = credentials.user(tenant="open", role="developer", username="jetsetter")
    assert login(server, name, PARIS).json()["status"] == "authenticated"
    denied = login(server, name, SYDNEY)
    wrong = login(server, name, PARIS, password="not the password at all")
    assert denied.status_code == wrong.status_code == 401
    assert denied.json() == wrong.json()
    assert denied.json()["code"] == "invalid_credentials"
    refused = [e for e in audit(credentials, "login.failure", name) if e.reason == "risk_denied"]
    (event,) = refused
    assert event.outcome == "denied"
    assert "impossible_travel" in reasons(event)
    assert event.details["ip"] == SYDNEY


def test_blocked_network_is_refused_like_a_wrong_password(
    proxied: tuple[ServerProcess, Credentials],
) -> None:
    server, credentials = proxied
    name = credentials.user(tenant="open", role="developer", username="blocked-user")
    denied = login(server, name, LONDON)
    wrong = login(server, name, LONDON, password="not the password at all")
    assert denied.status_code == wrong.status_code == 401
    assert denied.json() == wrong.json()
    (event,) = [e for e in audit(credentials, "login.failure", name) if e.reason == "risk_denied"]
    assert "network_blocked" in reasons(event)


def test_outside_the_roles_hours_needs_a_second_factor(
    proxied: tuple[ServerProcess, Credentials],
) -> None:
    server, credentials = proxied
    name = credentials.user(tenant="open", role="viewer", username="night-owl")
    secret = give_totp(credentials, name)
    asked = login(server, name, PARIS)
    assert asked.status_code == 200, asked.text
    assert asked.json()["status"] == "mfa_required"
    assert asked.json()["risk"]["level"] in ("medium", "high")
    (event,) = audit(credentials, "login.mfa_required", name)
    assert "hours_outside_role" in reasons(event)
    verified = httpx.post(
        f"{server.url}/auth/login/{asked.json()['transaction_id']}/verify",
        json={"method": "totp", "code": pyotp.TOTP(secret).now()},
        headers={"X-Forwarded-For": PARIS},
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["acr"] == "aal2"
    (success,) = audit(credentials, "login.success", name)
    assert "hours_outside_role" in reasons(success)


def test_one_address_spraying_usernames_is_throttled(
    proxied: tuple[ServerProcess, Credentials],
) -> None:
    server, _ = proxied
    codes = [
        login(server, f"nobody-{n}", TOKYO, password="Summer2026!").status_code for n in range(15)
    ]
    assert codes[:10] == [401] * 10
    assert set(codes[10:]) == {429}
    refused = login(server, "nobody-else", TOKYO)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    # another address is not concerned
    assert login(server, "nobody-else", BERLIN).status_code == 401
