"""The console in real Chromium against a real ``bastion serve`` on ``http://localhost:PORT``.

One server and one browser for the module; the first administrator is made from the
setup link the server prints, as a person would. Screenshots of the main pages go to
``tests/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.browser import (
    PASSWORD,
    SCREENSHOTS,
    Totp,
    screenshot,
    setup_link,
)
from tests.support.server import ServerProcess

pytestmark = pytest.mark.timeout(180)


@dataclass
class Person:
    username: str
    context: Any
    page: Any
    totp: Totp
    codes: list[str]


def base(server: ServerProcess) -> str:
    return f"http://localhost:{server.port}"


def new_page(chromium: Any, server: ServerProcess, **options: Any) -> tuple[Any, Any]:
    context = chromium.new_context(base_url=base(server), **options)
    context.set_default_timeout(15_000)
    return context, context.new_page()


def enrol(page: Any, username: str, password: str) -> tuple[Totp, list[str]]:
    """Sign in with the password, enrol an authenticator app (secret read from the page),
    keep the recovery codes, finish: back on the sign-in page."""
    sign_in_password(page, username, password)
    page.wait_for_url("**/console/enrol")
    screenshot(page, f"enrolment-start-{username}")
    page.get_by_role("button", name="Set up an authenticator app").click()
    secret = page.locator("#totp-secret").inner_text().strip()
    assert page.locator("img.qr").get_attribute("src").startswith("data:image/svg+xml;base64,")
    screenshot(page, f"enrolment-qr-{username}")
    totp = Totp(secret)
    page.get_by_label("6-digit code from the app").fill(totp.code())
    page.get_by_role("button", name="Activate").click()
    page.wait_for_url("**/console/enrol/recovery-codes")
    codes = [c.strip() for c in page.locator("#recovery-codes li").all_inner_texts()]
    assert len(codes) == 10
    assert page.get_by_role("link", name="Download as a text file").get_attribute("download")
    screenshot(page, f"recovery-codes-{username}")
    page.get_by_role("button", name="I have saved my codes").click()
    page.wait_for_url("**/console/sign-in?notice=enrolled")
    return totp, codes


def sign_in_password(page: Any, username: str, password: str) -> None:
    page.goto("/console/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def sign_in_totp(page: Any, username: str, password: str, totp: Totp) -> None:
    sign_in_password(page, username, password)
    page.wait_for_url("**/console/sign-in/verify")
    page.get_by_label("6-digit code from your authenticator app").fill(totp.code())
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r".*/console$"))


@pytest.fixture(scope="module")
def admin(chromium: Any, server: ServerProcess) -> Iterator[Person]:
    """The first administrator, from the setup link to a signed-in console (aal2)."""
    context, page = new_page(chromium, server)
    page.goto(setup_link(server))
    page.wait_for_url("**/console/setup")
    assert "#" not in page.url  # the token left the address bar and the history
    assert page.locator("#token").input_value().startswith("bst_setup_")
    assert not page.locator("#token").is_visible()
    screenshot(page, "setup")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_role("button", name="Create administrator").click()
    page.wait_for_url("**/console/sign-in?notice=admin_created")
    screenshot(page, "sign-in")
    totp, codes = enrol(page, "admin", PASSWORD)
    # A recovery code here keeps the admin's next TOTP step free for the step-up test
    # (a code of a time step is accepted once); carol signs in with her app.
    sign_in_password(page, "admin", PASSWORD)
    page.wait_for_url("**/console/sign-in/verify")
    page.get_by_role("link", name="use a recovery code").click()
    page.get_by_label("One of your recovery codes").fill(codes.pop())
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r".*/console$"))
    yield Person("admin", context, page, totp, codes)
    context.close()


def test_first_sign_in_from_the_setup_link_enrols_totp(admin: Person) -> None:
    page = admin.page
    assert page.get_by_role("heading", name="Welcome, admin").is_visible()
    assert page.locator(".who .badge").inner_text() == "aal2"
    for name in ("setup", "sign-in", "enrolment-qr-admin", "recovery-codes-admin"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 1000


def test_cookie_flags_and_no_token_reachable_from_javascript(admin: Person) -> None:
    cookies = {c["name"]: c for c in admin.context.cookies()}
    session = cookies["bastion_console"]  # over TLS: __Host-bastion_console, Secure
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    assert session["path"] == "/"
    assert admin.page.evaluate("document.cookie") == ""
    storage = admin.page.evaluate("[localStorage.length, sessionStorage.length]")
    assert storage == [0, 0]
    html = admin.page.content()
    assert "eyJ" not in html
    assert "bst_rt_" not in html


def test_csrf_from_another_origin_page_is_refused(admin: Person, server: ServerProcess) -> None:
    """A page on http://localhost:1 is same-site (the Strict cookie goes along) but not
    same-origin: its form post is refused and nothing is created."""
    page = admin.context.new_page()
    evil = (
        f'<form method="post" action="{base(server)}/console/collections">'
        '<input name="csrf" value="guessed"><input name="name" value="pwned">'
        '<input name="size" value="4"><button>Win a prize</button></form>'
    )
    page.route(
        "http://localhost:1/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body=evil),
    )
    page.goto("http://localhost:1/prize")
    with page.expect_navigation():
        page.get_by_role("button", name="Win a prize").click()
    assert "This form was not sent by this console" in page.content()
    page.close()
    admin.page.goto("/console/collections")
    assert admin.page.get_by_role("link", name="pwned").count() == 0


def test_keyboard_only_sign_in_at_200_percent_in_a_narrow_window(
    chromium: Any, server: ServerProcess, admin: Person
) -> None:
    context, page = new_page(
        chromium, server, viewport={"width": 360, "height": 740}, device_scale_factor=2
    )
    page.goto("/console/sign-in")
    assert page.evaluate("document.activeElement.id") == "username"  # autofocus
    page.keyboard.type("admin")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/sign-in/verify")
    page.goto("/console/sign-in/verify?method=recovery_code")
    page.keyboard.type(admin.codes[0])
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/console$"))
    page.goto("/console/account")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360 + 1  # nothing wider than the window: no sideways scrolling
    screenshot(page, "account-narrow")
    context.close()


def test_admin_pages_render(admin: Person) -> None:
    page = admin.page
    for path, name, heading in (
        ("/console/account", "account", "My account"),
        ("/console/admin/service-accounts", "service-accounts", "Service accounts"),
        ("/console/admin/policy", "policy", "Assurance policy"),
        ("/console/admin/risk", "risk", "Risk decisions"),
        ("/console/admin/audit", "audit", "Audit log"),
    ):
        page.goto(path)
        assert page.get_by_role("heading", name=heading, exact=True).is_visible()
        screenshot(page, name)
        if name == "account":
            assert page.get_by_role("heading", name="Remembered devices").is_visible()
    assert "Hash chain intact" in page.locator("#chain-status").inner_text()


def test_viewer_sees_no_write_buttons_and_a_suspension_ends_the_console(
    chromium: Any, server: ServerProcess, admin: Person
) -> None:
    page = admin.page
    page.goto("/console/collections")
    page.get_by_label("Name").fill("docs")
    page.get_by_label("Vector size").fill("4")
    page.get_by_role("button", name="Create collection").click()
    page.wait_for_url("**/console/collections/docs")

    page.goto("/console/admin/users")
    page.get_by_label("Username").fill("carol")
    page.get_by_label("viewer").check()
    page.get_by_role("button", name="Create user").click()
    link = page.locator("#enrolment-link").inner_text().strip()
    screenshot(page, "users-new-user")
    user_page = page.url
    page.goto("/console/admin/users")
    screenshot(page, "users")

    context, carol = new_page(chromium, server)
    carol.goto(link)
    carol.wait_for_url("**/console/enroll")
    carol.get_by_label("New password").fill(PASSWORD)
    carol.get_by_role("button", name="Set password").click()
    carol.wait_for_url("**/console/sign-in?notice=password_set")
    totp, _ = enrol(carol, "carol", PASSWORD)
    sign_in_totp(carol, "carol", PASSWORD, totp)
    carol.goto("/console/collections")
    assert carol.get_by_role("link", name="docs").is_visible()
    assert carol.get_by_role("button", name="Create collection").count() == 0
    carol.goto("/console/collections/docs")
    assert carol.get_by_role("button", name="Delete collection").count() == 0
    assert carol.get_by_role("button", name="Add payload index").count() == 0
    screenshot(carol, "collection-viewer")

    page.goto(user_page)
    page.get_by_role("button", name="Suspend").click()
    page.wait_for_selector("text=User suspended")
    suspended_at = time.monotonic()
    carol.reload()
    assert carol.url.endswith("/console/sign-in?notice=ended")
    assert time.monotonic() - suspended_at < 1.0, "the suspended console lived on"
    context.close()


def test_step_up_in_place_on_a_collection_delete(admin: Person, server: ServerProcess) -> None:
    page = admin.page
    page.goto("/console/admin/policy")
    page.get_by_label("Maximum age for collections.delete").fill("1")
    page.get_by_role("button", name="Save policy").click()
    page.wait_for_selector("text=Policy saved.")
    time.sleep(1.5)  # the sign-in is now older than the policy's one second
    page.goto("/console/collections/docs")
    screenshot(page, "collection")
    page.get_by_label("Type “docs” to delete this collection").fill("docs")
    page.get_by_role("button", name="Delete collection").click()
    page.wait_for_url("**/console/step-up")
    screenshot(page, "step-up")
    page.get_by_label("6-digit code from your authenticator app").fill(admin.totp.code())
    page.get_by_role("button", name="Confirm and continue").click()
    page.wait_for_url("**/console/collections")
    assert page.get_by_text("Collection docs deleted.").is_visible()
    screenshot(page, "collections")
    page.goto("/console/admin/audit?action=collection.deleted")
    assert page.get_by_role("cell", name="collection.deleted").count() == 1


def test_remember_this_device_keeps_a_credential_script_cannot_read(
    chromium: Any, server: ServerProcess, admin: Person
) -> None:
    """ "Remember this device" at the second step: the device credential is kept in an
    HttpOnly, SameSite=Strict cookie scoped to /console (never in document.cookie); the
    next sign-in from this browser is password + device (aal2), without a second step."""
    context, page = new_page(chromium, server)
    sign_in_password(page, "admin", PASSWORD)
    page.wait_for_url("**/console/sign-in/verify")
    page.get_by_role("link", name="use a recovery code").click()
    page.get_by_label("One of your recovery codes").fill(admin.codes.pop())
    page.get_by_label(re.compile("Remember this device")).check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r".*/console$"))
    cookies = {c["name"]: c for c in context.cookies()}
    device = cookies["bastion_device"]  # over TLS: __Secure-bastion_device, Secure
    assert device["value"].startswith("bst_dev_")
    assert device["httpOnly"] is True
    assert device["sameSite"] == "Strict"
    assert device["path"] == "/console"
    assert "bst_dev_" not in page.evaluate("document.cookie")
    assert "bst_dev_" not in page.content()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/sign-in?notice=signed_out")

    sign_in_password(page, "admin", PASSWORD)  # no second step: the device is the factor
    page.wait_for_url(re.compile(r".*/console$"))
    assert page.locator(".who .badge").inner_text() == "aal2"
    page.goto("/console/account")
    assert page.locator("text=Remembered devices").count() >= 1
    context.close()


def test_sign_out_then_the_console_is_closed(admin: Person) -> None:
    page = admin.page
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/sign-in?notice=signed_out")
    page.goto("/console/account")
    assert "/console/sign-in" in page.url
