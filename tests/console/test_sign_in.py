"""Sign-in, enrolment, sign-out and the one-time setup links, through the real app."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from bastion.storage.schema import audit_events, console_sessions
from tests.console.helpers import PASSWORD, Console, console_env
from tests.support.app import Env
from tests.support.authenticator import SoftAuthenticator
from tests.support.server import ADMIN_PASSWORD
from tests.support.webauthn import ORIGIN


def _actions(console: Console) -> list[str]:
    with console.runtime.db.read() as conn:
        return [row.action for row in conn.execute(select(audit_events.c.action))]


def test_first_sign_in_enrols_totp_shows_codes_once_then_signs_in_again(console: Console) -> None:
    browser = console.browser()
    page = browser.sign_in("admin", ADMIN_PASSWORD)
    assert page.url.path == "/console/enrol"
    assert "Set up an authenticator app" in page.text
    page = browser.post("/console/enrol/totp", {"name": "phone"})
    # The QR code is an image (data: URI), never SVG markup inlined into the page.
    assert re.search(r'<img class="qr" src="data:image/svg\+xml;base64,', page.text)
    assert "<svg" not in page.text
    secret = re.search(r'id="totp-secret" class="secret">([A-Z2-7]+)<', page.text)
    assert secret
    page = browser.post("/console/enrol/totp/activate", {"code": "000000"})
    assert "not valid" in page.text.lower() or "code" in page.text.lower()
    page = browser.post("/console/enrol/totp/activate", {"code": browser.totp(secret.group(1))})
    assert page.url.path == "/console/enrol/recovery-codes"
    codes = re.findall(r"<li><code>([^<]+)</code></li>", page.text)
    assert len(codes) == 10
    assert 'download="bastion-recovery-codes.txt"' in page.text
    page = browser.post("/console/enrol/done")
    assert page.url.path == "/console/sign-in"
    assert "Sign in with it now" in page.text
    assert browser.get("/console/enrol/recovery-codes").url.path == "/console/sign-in"  # gone

    # The next sign-in needs the second factor; a recovery code works too, once.
    page = browser.sign_in("admin", ADMIN_PASSWORD)
    assert page.url.path == "/console/sign-in/verify"
    page = browser.get("/console/sign-in/verify?method=recovery_code")
    page = browser.post("/console/sign-in/verify", {"method": "recovery_code", "code": codes[0]})
    assert page.url.path == "/console"
    assert "Welcome, admin" in page.text
    actions = _actions(console)
    for expected in (
        "factor.enrolled",
        "factor.activated",
        "recovery_codes.regenerated",
        "recovery_code.used",
        "login.success",
    ):
        assert expected in actions


def test_every_failed_sign_in_shows_the_same_message(console: Console) -> None:
    console.user("suspended-sam")
    admin, _ = console.admin()
    users = admin.get("/console/admin/users").text
    sam = re.search(r'/console/admin/users/([^"]+)">suspended-sam<', users)
    assert sam
    admin.get(f"/console/admin/users/{sam.group(1)}")
    admin.post(f"/console/admin/users/{sam.group(1)}/status", {"status": "suspended"})
    pages = []
    for username, password in (
        ("nobody-here", PASSWORD),
        ("admin", "wrong password entirely"),
        ("suspended-sam", PASSWORD),
    ):
        page = console.browser().sign_in(username, password)
        assert page.status_code == 401
        pages.append(re.sub(r'value="[^"]*"', "", page.text))
    assert pages[0] == pages[1] == pages[2]
    assert "Sign-in failed. Check your username and password" in pages[0]


def test_a_wrong_second_factor_code_keeps_the_sign_in_going(console: Console) -> None:
    console.user("wendy")
    browser = console.browser()
    secret, _ = browser.enrol("wendy")
    page = browser.sign_in("wendy")
    page = browser.post("/console/sign-in/verify", {"method": "totp", "code": "123456"})
    assert page.status_code == 401
    assert "The code is not valid." in page.text
    page = browser.post("/console/sign-in/verify", {"method": "totp", "code": browser.totp(secret)})
    assert page.url.path == "/console"


def test_sign_out_ends_the_bastion_session_too(console: Console) -> None:
    browser, _ = console.signed_in("olga")
    browser.get("/console/account")
    page = browser.post("/console/sign-out")
    assert page.url.path == "/console/sign-in"
    assert "You are signed out" in page.text
    assert browser.get("/console/account").url.path == "/console/sign-in"
    with console.runtime.db.read() as conn:
        assert conn.execute(select(console_sessions)).first() is None  # nothing left behind
    assert "session.logout" in _actions(console)


def test_the_setup_link_leads_into_the_console_and_creates_the_admin(tmp_path: Path) -> None:
    for console in console_env(tmp_path, bootstrap_admin_password=None):
        started = console.app.state.bootstrap
        token = started.setup_url.split("#", 1)[1]
        browser = console.browser()
        page = browser.get("/setup")  # the link's page is the console's
        assert page.url.path == "/console/setup"
        assert 'autocomplete="new-password"' in page.text
        page = browser.post(
            "/console/setup", {"token": token, "username": "root", "password": "password"}
        )
        assert page.status_code == 422  # weak: said on the page, the link still works
        page = browser.post(
            "/console/setup", {"token": token, "username": "root", "password": PASSWORD}
        )
        assert page.url.path == "/console/sign-in"
        assert "administrator account is created" in page.text
        secret, _ = browser.enrol("root")
        browser.sign_in_totp("root", secret)
        again = console.browser()
        again.get("/console/setup")
        refused = again.post(
            "/console/setup", {"token": token, "username": "evil", "password": PASSWORD}
        )
        assert refused.status_code == 401


def test_an_enrolment_link_from_the_console_lets_the_new_user_in(console: Console) -> None:
    admin, _ = console.admin()
    admin.get("/console/admin/users")
    page = admin.post(
        "/console/admin/users", {"username": "nina", "roles": ["viewer"], "collections": ""}
    )
    link = re.search(r'id="enrolment-link" class="secret">([^<]+)<', page.text)
    assert link, page.text
    url = link.group(1)
    assert "/setup/enroll#bst_" in url
    assert "enrolment-link" not in admin.get(page.url.path).text  # shown once
    nina = console.browser()
    assert nina.get(url.split("#")[0].removeprefix("http://localhost:6333")).url.path == (
        "/console/enroll"
    )
    page = nina.post("/console/enroll", {"token": url.split("#", 1)[1], "password": PASSWORD})
    assert "Your password is set" in page.text
    secret, _ = nina.enrol("nina")
    page = nina.sign_in_totp("nina", secret)
    assert "viewer" in page.text


def test_a_sign_in_in_progress_is_sent_to_its_own_page(console: Console) -> None:
    console.user("half-way")
    browser = console.browser()
    assert browser.sign_in("half-way").url.path == "/console/enrol"
    assert browser.get("/console/account").url.path == "/console/enrol"  # enrolment only
    assert browser.get("/console/admin/users").url.path == "/console/enrol"


def test_no_security_key_button_while_the_server_has_no_relying_party(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Browsers refuse WebAuthn on an IP-address origin: with such a public URL and no RP ID
    # configured there is no relying party, and the console shows no button.
    monkeypatch.setattr(console.runtime, "relying_party", None)
    browser, _ = console.signed_in("no-keys")
    for path in ("/console/account", "/console/sign-in"):
        page = browser.get(path)
        assert "webauthn.js" not in page.text
        assert "security key or passkey" not in page.text.lower()
        assert 'autocomplete="username"' in page.text or path != "/console/sign-in"
    options = browser.request(
        "POST",
        "/console/webauthn/options",
        json={"csrf": "x", "purpose": "register"},
        headers={"Origin": "http://localhost:6333"},
    )
    assert options.status_code == 404


def test_security_keys_are_offered_once_the_api_serves_them(console: Console) -> None:
    browser, _ = console.signed_in("with-keys")
    account = browser.get("/console/account")
    assert "webauthn.js" in account.text
    assert "Add a security key or passkey" in account.text
    browser.get("/console/sign-out")
    assert 'autocomplete="username webauthn"' in console.browser().get("/console/sign-in").text


def test_a_key_only_user_on_an_ip_address_url_is_told_why(env: Env, tmp_path: Path) -> None:
    """Browsers refuse WebAuthn on an IP-address origin: a user whose only factor is a
    security key is not sent to a dead second step but told why (issue 13)."""
    restricted = env.login().json()
    auth = {"Authorization": f"Bearer {restricted['access_token']}"}
    options = env.client.post("/me/factors/webauthn/options", headers=auth).json()
    credential = SoftAuthenticator().create(options, origin=ORIGIN)
    registered = env.client.post(
        "/me/factors/webauthn", headers=auth, json={"credential": credential, "name": "Key"}
    )
    assert registered.status_code == 201, registered.text
    ip_url = "http://127.0.0.1:6333"
    for console in console_env(tmp_path, public_url=ip_url):
        browser = console.browser(origin=ip_url)
        page = browser.sign_in("admin", ADMIN_PASSWORD)
        assert page.url.path == "/console/sign-in", page.url
        assert "Your security keys cannot be used at this address" in page.text
